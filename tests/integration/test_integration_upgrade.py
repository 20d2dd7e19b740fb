"""Upgrade in place: a stack deployed by an earlier release takes the current version without
losing an item, a summary or its stream position, and without drift.

1. The root module and the handlers' zip AS OF ``PREVIOUS_RELEASE`` (extracted from git history
   with ``git archive``; the zip built by that release's own builder) are applied under a
   unique prefix to a fresh endpoint of that release (see ``upgrade_target``), as that
   release's ``make deploy`` applied them: the root module as the root, resources at
   ``module.table...``; then a mixed load (views, votes, changed and removed votes, removed
   views) runs and drains.
2. The CURRENT deployment root (deploy/, what ``make deploy`` applies now: the root module as
   ``module.video_stats``) and zip are planned against the same state (same prefix, same
   endpoint): its ``moved`` blocks must move every resource to its new address, and the plan
   must neither replace nor destroy the table (every item and the stream would be lost) nor a
   mapping (its stream position would be lost); ``vstats.plan_review`` calls these out, the
   same review as ``make plan``. Then the saved plan is applied.
3. Right after the upgrade every base item and every summary is as before, but the summaries
   the earlier release wrote carry no ``GSI2SK`` (the ranking index's range key came later),
   so `make summary` misses them: the documented upgrade step, ``make reconcile
   ARGS=--repair`` (run here through its library API), sets them without pausing the
   mappings, and then the ranking index lists every summary. A second load
   (with fault injection on the local endpoint: retried, killed and duplicated batches write
   over summaries that carry the earlier release's marks) drains; every summary equals the
   recount, and a plan right after is empty.
4. Destroy, and nothing with the prefix is left.

Terraform runs nine times (init, plan, apply per version; show, plan, destroy), which is most
of the test's time.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import tarfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sized
from pathlib import Path
from typing import Any

import pytest
from it_support import (
    FAULT_COUNTERS,
    FAULTS,
    FUNCTION_ROLES,
    REPO_ROOT,
    STREAM_MAPPING,
    Stack,
    StackFixture,
    StackRunner,
    Target,
    assert_exact,
    build_lambda_package,
    describe_drift,
    engine_delta,
    record_figure,
    run_loadtest,
    selected_target,
    tf_var_object,
)
from localcloud.endpoint_process import EndpointProcess
from py.path import local as py_path  # type: ignore[import-untyped]
from video_stats.model import SummaryKey, SummaryKind
from video_stats.store import SummaryStore
from vstats import plan_review
from vstats.deployment import SHARDS_ENV
from vstats.drift import compare, index_faults, read_snapshot
from vstats.generator import MIX_KEYS
from vstats.pipeline import LambdaPipeline
from vstats.repair import repair
from vstats.stream_reader import AWS_TIMING, LOCAL_TIMING
from vstats.tables import list_summaries
from waiting import wait_until

pytestmark = pytest.mark.integration

# The release whose deployments must upgrade in place: f9359f7 is the last commit before the
# compact exactly-once marks, the new GSI1 projection and the GSI2 key, so it is what a live
# stack may run. Move it forward when a release ships; a clone needs the history down to it
# (a shallow CI clone: `git fetch --unshallow`).
PREVIOUS_RELEASE = "f9359f7"
# What `make deploy` applies: the previous release's root module itself; now deploy/, which
# calls the root module as module.video_stats (deploy/moved.tf moves the old addresses).
PREVIOUS_CONFIG = Path(".")
CURRENT_CONFIG = Path("deploy")
# The settings tests/terraform/stack gives every integration environment (ephemeral).
EPHEMERAL = {"TF_VAR_deletion_protection": "false", "TF_VAR_log_retention_days": "1"}
# The endpoint is the earlier release's: the load test uses only the control routes it has.
LOAD = {"engine_api": False}
UPGRADE_FAULTS = dict.fromkeys(FAULTS, 0.5)  # the scenarios' faults, more often
# Plan warnings (vstats.plan_review) that an in-place upgrade must never carry.
FORBIDDEN = ("DATA LOSS", "STREAM POSITION LOST")


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The repository as of ``PREVIOUS_RELEASE`` and the zip its own builder makes."""
    tree = extract_release(PREVIOUS_RELEASE, tmp_path_factory.mktemp("previous") / "tree")
    return tree, build_lambda_package(tree, tree.parent / "lambda.zip")


@pytest.fixture
def upgrade_target(
    request: pytest.FixtureRequest,
    previous_release: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Target]:
    """AWS, or a fresh local endpoint OF THE EARLIER RELEASE: the current endpoint refuses its
    filter patterns (they name ``eventName``; localcloud/filters.py takes the Lambda guide's
    "only support filtering on the `dynamodb` key" strictly), so under that reading such a
    stack exists only where that release's endpoint accepted it. The upgrade is applied there."""
    if selected_target() == "aws":
        yield request.getfixturevalue("it_target")
        return
    tree, _ = previous_release
    state_dir = tmp_path_factory.mktemp("upgrade-endpoint")
    process = EndpointProcess(state_dir, scripts_dir=tree / "scripts")
    endpoint = process.start()
    try:
        yield Target("local", "us-east-1", endpoint)
    finally:
        process.stop()


def test_previous_release_upgrades_in_place_without_drift(
    request: pytest.FixtureRequest,
    upgrade_target: Target,
    previous_release: tuple[Path, Path],
    lambda_package: Path,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    target = upgrade_target
    previous, previous_zip = previous_release
    prefix = f"it-up-{secrets.token_hex(3)}"
    # The integration fixture's teardown (destroy with the runner that applied last, then
    # nothing with the prefix may be left), registered before anything is applied. One data
    # dir and one state file (work/../terraform.tfstate) serve both versions: the upgrade is
    # the current configuration applied to the earlier release's state.
    fixture = StackFixture(request.config, py_path(str(Path(__file__).parent)))
    work_dir = tmp_path / "work"

    def use_version(config: Path, package: Path) -> StackRunner:
        variables = {
            "TF_VAR_name_prefix": prefix,
            "TF_VAR_package_file": str(package),
            "TF_VAR_stream_mapping": tf_var_object(STREAM_MAPPING),
            **EPHEMERAL,
        }
        fixture.configure(target, prefix, variables)
        runner: StackRunner = fixture.get_runner(config, work_dir)
        runner.init()  # a new module source: what `terraform init` does on a new checkout
        fixture.runner = runner  # the teardown destroys with the runner that applied last
        return runner

    old = use_version(previous / PREVIOUS_CONFIG, previous_zip)
    request.addfinalizer(fixture.tear_down)
    state = old.apply()
    before = Stack(prefix, target, state.outputs, old, previous_zip)
    first = run_loadtest(before, events=300, seed=7, id_prefix="upgrade-", **LOAD)
    lacking = [k for k in MIX_KEYS if not first.events_by_kind.get(k)]
    assert not lacking, f"the first load lacked {lacking}: {first.events_by_kind}"
    exact_before = assert_exact(before)
    snapshot = read_snapshot(before.client("dynamodb"), before.table, keep_base=True)

    # The upgrade: the current configuration and zip against the same state.
    new = use_version(REPO_ROOT / CURRENT_CONFIG, lambda_package)
    plan = new.saved_plan(tmp_path / "upgrade.tfplan")
    moved = assert_moved(plan, state_addresses(Path(old.state_path)))
    review = plan_review.review(plan)
    assert_in_place(review)
    state = new.apply_saved(tmp_path / "upgrade.tfplan")
    after = Stack(prefix, target, state.outputs, new, lambda_package)
    assert after.table == before.table
    assert after.stream_arn == before.stream_arn, "the upgrade changed the table's stream"
    assert after.mapping_uuids == before.mapping_uuids, "the upgrade re-created a mapping"

    # Nothing lost or changed by the upgrade itself.
    upgraded = read_snapshot(after.client("dynamodb"), after.table, keep_base=True)
    assert upgraded.base_items == snapshot.base_items, "base items changed by the upgrade"
    lost = compare(snapshot.recount, upgraded.summaries)
    assert not lost, "summaries changed by the upgrade: " + describe_drift(lost)
    # The earlier release wrote no GSI2SK: those summaries are not ranked until the upgrade
    # step (reconcile --repair) sets it. Nothing drifts, so the mappings are not paused.
    unranked = unranked_summaries(after, upgraded.summaries)
    shards = index_shards(after)
    ddb = after.client("dynamodb")
    store = SummaryStore(ddb, after.table, shards)
    gaps = index_faults(store, upgraded.summaries)
    assert {f.key for f in gaps} >= set(unranked), "reconcile misses unranked summaries"
    upgrade_step = repair(
        ddb,
        after.client("dynamodbstreams"),
        after.table,
        after.stream_arn,
        LambdaPipeline(after.client("lambda"), after.stream_arn, control=target.control),
        index_shards=shards,
        timing=LOCAL_TIMING if target.is_local else AWS_TIMING,
    )
    assert not upgrade_step.drift_before, describe_drift(upgrade_step.drift_before)
    assert not upgrade_step.conflicts, upgrade_step.conflicts
    assert not upgrade_step.paused, "nothing drifted: the mappings must not be paused"
    assert [f.key for f in upgrade_step.ranked] == [f.key for f in gaps]
    ranked = read_snapshot(ddb, after.table)
    assert index_faults(store, ranked.summaries) == []
    assert not compare(snapshot.recount, ranked.summaries), "the upgrade step changed counters"
    missing = unranked_summaries(after, ranked.summaries)
    assert not missing, describe_unranked("after the upgrade step", missing, ranked.summaries)

    # The same users and videos again: the new handlers update summaries that carry the
    # earlier release's marks, under retries, kills and duplicates where the endpoint can.
    # A slower rate makes more batches, so that more of them meet a fault.
    faults: dict[str, Any] = {"faults": {**UPGRADE_FAULTS, "seed": 17}} if target.is_local else {}
    with engine_delta(after) if target.is_local else contextlib.nullcontext() as delta:
        second = run_loadtest(
            after, events=300, rate=50.0, seed=8, id_prefix="upgrade-", **LOAD, **faults
        )
        exact_after = assert_exact(after)
        injected = (
            {n: delta().total(after.mapping_uuids, n) for n in FAULT_COUNTERS} if delta else {}
        )
    assert not target.is_local or sum(injected.values()) > 0, f"no fault happened: {injected}"
    final = read_snapshot(after.client("dynamodb"), after.table)
    missing = unranked_summaries(after, final.summaries)
    assert not missing, describe_unranked("after the second load", missing, final.summaries)
    code, output = new.plan_exit_code()
    assert code == 0, f"plan after the upgrade: exit {code} (2: changes):\n{output[-4000:]}"

    actions = Counter(c.action for c in review.changes)
    table = next(c for c in review.changes if c.type == "aws_dynamodb_table")
    record_figure(
        "upgrade",
        release=PREVIOUS_RELEASE,
        plan=dict(sorted(actions.items())),
        moved=moved,
        table=f"{table.action} ({', '.join(table.changed) or 'nothing'})",
        events=first.events + second.events,
        summaries=f"{exact_before.summaries} -> {exact_after.summaries}",
        faults_after_upgrade=injected,
        seconds=round(time.monotonic() - started),
        unranked_right_after_upgrade=len(unranked),
        ranked_by_upgrade_step=len(upgrade_step.ranked),
    )


def assert_in_place(review: plan_review.Review) -> None:
    """The upgrade plan keeps the table, its stream and the mappings' positions."""
    tables = [c for c in review.changes if c.type == "aws_dynamodb_table"]
    assert len(tables) == 1, [c.address for c in tables]
    bad = [w for w in review.warnings if w.level in FORBIDDEN]
    assert not bad, "the upgrade plan is not in place:\n" + "\n".join(
        f"  {w.level}: {w.address}: {w.text}" for w in bad
    )
    assert tables[0].action in ("no-op", "update"), tables[0]


def state_addresses(state_file: Path) -> set[str]:
    """The addresses of the managed resource instances a state file holds."""
    addresses = set()
    for resource in json.loads(state_file.read_text())["resources"]:
        if resource["mode"] != "managed":
            continue
        module = f"{resource['module']}." if resource.get("module") else ""
        for instance in resource["instances"]:
            key = instance.get("index_key")
            index = "" if key is None else f"[{json.dumps(key)}]"
            addresses.add(f"{module}{resource['type']}.{resource['name']}{index}")
    return addresses


def assert_moved(plan: Mapping[str, Any], old: set[str]) -> int:
    """Every managed resource of the earlier release's state is planned at its new address,
    module.video_stats.<old address>, moved there (not destroyed and created); returns how many
    moved."""
    assert old, "the earlier release's state holds no resource"
    moved = {
        str(c["previous_address"]): str(c["address"])
        for c in plan.get("resource_changes") or []
        if c.get("previous_address") and c.get("mode") == "managed"
    }
    missing = sorted(a for a in old if moved.get(a) != f"module.video_stats.{a}")
    assert not missing, f"not moved to module.video_stats: {missing}"
    return len(moved)


def unranked_summaries(stack: Stack, summaries: Iterable[SummaryKey]) -> list[SummaryKey]:
    """The summaries that ``make summary``'s reader (GSI2, never a scan) does not list."""
    expected = set(summaries)
    shards = index_shards(stack)
    ddb = stack.client("dynamodb")
    listed: set[SummaryKey] = set()

    def probe() -> bool:  # a GSI is eventually consistent (AWS); the endpoint's at once
        listed.clear()
        for kind in SummaryKind:
            listed.update(row.key for row in list_summaries(ddb, stack.table, kind, shards=shards))
        return listed >= expected

    timeout = 0.0 if stack.target.is_local else 60.0
    with contextlib.suppress(AssertionError):
        wait_until(probe, timeout, interval=1.0, what="the ranking index")
    return sorted(expected - listed, key=lambda k: (k.kind.value, k.id))


def index_shards(stack: Stack) -> int:
    """The deployment's GSI2 shards, as its handlers have them."""
    lam = stack.client("lambda")
    function = stack.function_names[FUNCTION_ROLES[0]]
    variables = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    return int(variables[SHARDS_ENV])


def describe_unranked(when: str, missing: list[SummaryKey], summaries: Sized) -> str:
    return (
        f"{when}, the ranking index (GSI2, read by `make summary`) lists "
        f"{len(summaries) - len(missing)} of {len(summaries)} summaries; missing: "
        + ", ".join(f"{k.kind.value} {k.id}" for k in missing[:10])
    )


def extract_release(commit: str, destination: Path) -> Path:
    """The repository as of ``commit`` (``git archive``), in ``destination``."""
    archive = destination.with_suffix(".tar")
    result = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", f"--output={archive}", commit],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"cannot extract release {commit} from git history ({result.stderr.strip()}): "
            "the test needs a clone with that commit (not shallow: git fetch --unshallow)"
        )
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")
    return destination
