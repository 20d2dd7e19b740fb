"""Support of the integration tests: the deployment target, the pytest-terraform fixture that
applies tests/terraform/stack, the check that nothing of an environment is left, and the
waits, engine statistics and function logs the scenarios read.

Target: the local endpoint by default; real AWS with ``VIDEO_STATS_TEST_TARGET=aws`` (the same
tests, no code change: Terraform then runs through ``scripts/tf aws``, clients use the default
credential chain, and what only the local engine can show is skipped with a reason).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.config import Config
from localcloud.client import ControlClient
from localcloud.endpoint_process import LocalEndpoint
from pytest_terraform.tf import TerraformFixture, TerraformRunner, TerraformState
from video_stats.model import Counters, SummaryKey
from vstats.drift import Drift, compare, read_snapshot
from vstats.effects import ITEM_TYPE_OF_FUNCTION
from vstats.load_report import Report
from vstats.load_run import LoadTest, LoadTestConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_MODULE = "stack"  # tests/terraform/stack, found by pytest-terraform's module lookup
TARGET_ENV = "VIDEO_STATS_TEST_TARGET"
TF_BINARIES = {
    "local": REPO_ROOT / "tests" / "terraform" / "terraform-local",
    "aws": REPO_ROOT / "tests" / "integration" / "terraform-aws",
}
DEFAULT_REGION = "us-east-1"
# Short batching window: every scenario waits for at least one window per batch.
STREAM_MAPPING = {"maximum_batching_window_in_seconds": 1}
FUNCTION_ROLES = tuple(ITEM_TYPE_OF_FUNCTION)  # the root module's function keys

TargetName = Literal["local", "aws"]


def selected_target(environ: Mapping[str, str] | None = None) -> TargetName:
    """``VIDEO_STATS_TEST_TARGET``: ``local`` (default) or ``aws``; anything else is an error."""
    value = (os.environ if environ is None else environ).get(TARGET_ENV, "").strip().lower()
    if value in ("", "local"):
        return "local"
    if value == "aws":
        return "aws"
    raise ValueError(f"{TARGET_ENV} must be 'local' or 'aws', not {value!r}")


def aws_region(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return (
        env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or boto3.session.Session().region_name
        or DEFAULT_REGION
    )


def tf_var_object(values: Mapping[str, Any]) -> str:
    """A TF_VAR_ value for an object variable (JSON is valid HCL for one)."""
    return json.dumps(values)


def build_lambda_package(tree: Path, output: Path) -> Path:
    """The deployment zip of the source in ``tree`` (this checkout, or an extracted earlier
    release), built by that tree's own ``scripts/build_lambda_zip.py``: deterministic, about
    half a second with the shared dependency cache."""
    output.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable, str(tree / "scripts" / "build_lambda_zip.py"),
            "--source", str(tree / "lambda_src"),
            "--requirements", str(tree / "lambda_src" / "requirements.txt"),
            "--output", str(output),
            "--cache", str(REPO_ROOT / "build" / "cache"),
        ],
        check=True,
        cwd=tree,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return output


# --- the target -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where the environment is deployed: the session's private local endpoint, or AWS."""

    name: TargetName
    region: str
    endpoint: LocalEndpoint | None = None

    @property
    def is_local(self) -> bool:
        return self.endpoint is not None

    @property
    def control(self) -> ControlClient | None:
        return ControlClient(self.endpoint.control_url, timeout=30.0) if self.endpoint else None

    @property
    def tf_binary(self) -> Path:
        return TF_BINARIES[self.name]

    def terraform_environment(self) -> dict[str, str]:
        """What Terraform needs besides the TF_VAR_* of the stack."""
        env = {"TF_VAR_region": self.region}
        if self.endpoint is not None:
            env["LOCAL_ENDPOINT_URL"] = self.endpoint.endpoint_url
        else:
            env["AWS_REGION"] = self.region
        return env

    def client(self, service: str, attempts: int = 10) -> Any:
        options: dict[str, Any] = {
            "retries": {"mode": "standard", "max_attempts": attempts},
            "max_pool_connections": 20,
            # AWS means AWS: an AWS_ENDPOINT_URL left in the shell (`make env`) must not
            # redirect these clients to a local endpoint. (Not in the botocore stubs yet.)
            "ignore_configured_endpoint_urls": True,
        }
        config = Config(**options)
        make_client: Any = boto3.session.Session().client  # the service is known at run time
        if self.endpoint is None:
            return make_client(service, region_name=self.region, config=config)
        return make_client(
            service,
            endpoint_url=self.endpoint.endpoint_url,
            region_name=self.region,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=config,
        )


# --- pytest-terraform -----------------------------------------------------------------------


class TerraformError(subprocess.CalledProcessError):
    """A failed terraform command, with the end of its output in the message."""

    def __str__(self) -> str:
        text = self.output.decode(errors="replace") if isinstance(self.output, bytes) else ""
        command = " ".join(str(a) for a in self.cmd[1:3])
        return f"terraform {command} exited with {self.returncode}:\n{text[-4000:]}"


class StackRunner(TerraformRunner):  # type: ignore[misc]
    """pytest-terraform's runner with an environment of its own.

    The TF_VAR_* and the endpoint reach only the terraform processes, never ``os.environ`` of
    the test session (other tests in the session check the wrapper's behaviour without them).
    Output is kept in ``<work dir>/../terraform.log`` and ends up in the failure message.
    """

    def __init__(self, work_dir: str, module_dir: str, tf_bin: str, env: Mapping[str, str]):
        super().__init__(work_dir, module_dir=module_dir, tf_bin=tf_bin)
        self.environment = dict(env)
        self.log_path = Path(work_dir).parent / "terraform.log"

    def _run_cmd(self, args: list[str], output: bool = False) -> Any:
        env = dict(os.environ)
        env.update(self.environment)
        env["TF_IN_AUTOMATION"] = "yes"
        env["TF_DATA_DIR"] = str(self.work_dir)
        result = subprocess.run(
            [str(a) for a in args],
            cwd=str(self.module_dir),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(map(str, args))}\n".encode() + result.stdout + b"\n")
        if result.returncode != 0:
            raise TerraformError(result.returncode, args, output=result.stdout)
        return result.stdout if output else result.returncode

    def plan_exit_code(self) -> tuple[int, str]:
        """``terraform plan -detailed-exitcode`` on this runner's state: 0 = no changes,
        2 = changes, 1 = error; and the plan's output."""
        args = self._get_cmd_args("plan", output="-detailed-exitcode")
        try:
            out = self._run_cmd(args, output=True)
        except TerraformError as err:
            return err.returncode, err.output.decode(errors="replace")
        return 0, out.decode(errors="replace")

    def saved_plan(self, plan_path: Path) -> dict[str, Any]:
        """``terraform plan -out`` to ``plan_path``, returned as ``terraform show -json``."""
        self.plan(str(plan_path))
        shown = self._run_cmd([self.tf_bin, "show", "-no-color", "-json", str(plan_path)], True)
        return dict(json.loads(shown))

    def apply_saved(self, plan_path: Path) -> TerraformState:
        """Apply exactly the plan that ``saved_plan`` wrote (no second plan)."""
        self._run_cmd(self._get_cmd_args("apply", plan=str(plan_path)))
        return TerraformState.from_file(self.state_path, self)


class StackFixture(TerraformFixture):  # type: ignore[misc]
    """pytest-terraform's session fixture for tests/terraform/stack, bound to the target.

    ``create`` (pytest-terraform) runs init, then apply, and destroys what a failed apply
    created; its teardown is registered before the apply, so destroy always runs, whatever the
    tests did. After the destroy, the teardown checks that nothing with the prefix is left.
    """

    def __init__(self, pytest_config: Any, test_dir: Any) -> None:
        super().__init__(
            tf_bin=None,
            plugin_cache=None,
            scope="session",
            tf_root_module=STACK_MODULE,
            test_dir=test_dir,
            replay=False,
            teardown="on",  # always destroy ("off"/"ignore" would hide a leak)
            pytest_config=pytest_config,
        )
        self.environment: dict[str, str] = {}
        self.target: Target | None = None
        self.prefix = ""
        self.leftover_timeout = 10.0

    def configure(self, target: Target, prefix: str, variables: Mapping[str, str]) -> None:
        self.target = target
        self.prefix = prefix
        self.environment = {**target.terraform_environment(), **variables}
        self.leftover_timeout = 10.0 if target.is_local else 180.0

    def get_runner(self, module_dir: Any, work_dir: Any) -> StackRunner:
        assert self.target is not None, "configure() the fixture before it runs"
        return StackRunner(
            str(work_dir), str(module_dir), str(self.target.tf_binary), self.environment
        )

    def tear_down(self) -> None:
        destroy_error: BaseException | None = None
        for _ in range(2):  # once more after a failure: AWS deletions can race each other
            try:
                super().tear_down()
                destroy_error = None
                break
            except Exception as err:  # reported below, together with what is left
                destroy_error = err.__cause__ or err
        assert self.target is not None
        left = wait_for_no_leftovers(self.target, self.prefix, self.leftover_timeout)
        if destroy_error is not None or left:
            parts = [f"environment {self.prefix!r} was not cleaned up"]
            if destroy_error is not None:
                parts.append(f"destroy failed: {destroy_error}")
            if left:
                parts.append("left behind: " + ", ".join(left))
            raise AssertionError("\n".join(parts))


# --- the deployed environment ------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    """One applied environment: its prefix, outputs and the runner that applied it."""

    prefix: str
    target: Target
    outputs: Mapping[str, Any]
    runner: StackRunner
    package_file: Path

    def output(self, name: str) -> Any:
        value = self.outputs[name]
        return value["value"] if isinstance(value, dict) and "value" in value else value

    @property
    def table(self) -> str:
        return str(self.output("table_name"))

    @property
    def stream_arn(self) -> str:
        return str(self.output("stream_arn"))

    @property
    def function_names(self) -> dict[str, str]:
        return dict(self.output("function_names"))

    @property
    def queue_urls(self) -> dict[str, str]:
        return dict(self.output("failure_queue_urls"))

    @property
    def mapping_uuids(self) -> dict[str, str]:
        return dict(self.output("event_source_mapping_uuids"))

    def client(self, service: str) -> Any:
        return self.target.client(service)


# --- nothing left behind -----------------------------------------------------------------------


def find_leftovers(target: Target, prefix: str) -> list[str]:
    """Every resource of the environment ``prefix`` that still exists, one line each: tables,
    functions, event source mappings, queues, roles, log groups, alarms, dashboards, topics."""
    start = f"{prefix}-"
    found: list[str] = []
    ddb = target.client("dynamodb")
    for page in ddb.get_paginator("list_tables").paginate():
        found += [f"table {n}" for n in page.get("TableNames", []) if n.startswith(start)]
    lam = target.client("lambda")
    for page in lam.get_paginator("list_functions").paginate():
        found += [
            f"function {f['FunctionName']}"
            for f in page.get("Functions", [])
            if f["FunctionName"].startswith(start)
        ]
    for page in lam.get_paginator("list_event_source_mappings").paginate():
        for mapping in page.get("EventSourceMappings", []):
            function = function_name_of(mapping.get("FunctionArn", ""))
            if function.startswith(start):
                found.append(f"event source mapping {mapping['UUID']} ({function})")
    sqs = target.client("sqs")
    for url in sqs.list_queues(QueueNamePrefix=start).get("QueueUrls", []):
        found.append(f"queue {url.rsplit('/', 1)[-1]}")
    iam = target.client("iam")
    for page in iam.get_paginator("list_roles").paginate():
        found += [
            f"role {r['RoleName']}"
            for r in page.get("Roles", [])
            if r["RoleName"].startswith(start)
        ]
    logs = target.client("logs")
    for page in logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=f"/aws/lambda/{start}"
    ):
        found += [f"log group {g['logGroupName']}" for g in page.get("logGroups", [])]
    cloudwatch = target.client("cloudwatch")
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=start):
        found += [f"alarm {a['AlarmName']}" for a in page.get("MetricAlarms", [])]
    for page in cloudwatch.get_paginator("list_dashboards").paginate(DashboardNamePrefix=start):
        found += [f"dashboard {d['DashboardName']}" for d in page.get("DashboardEntries", [])]
    for page in target.client("sns").get_paginator("list_topics").paginate():
        found += [
            f"topic {t['TopicArn']}"
            for t in page.get("Topics", [])
            if t["TopicArn"].rsplit(":", 1)[-1].startswith(start)
        ]
    return sorted(found)


def function_name_of(arn: str) -> str:
    """``arn:aws:lambda:r:a:function:NAME[:qualifier]`` -> NAME."""
    _, sep, rest = arn.partition(":function:")
    return rest.split(":", 1)[0] if sep else arn


def wait_for_no_leftovers(target: Target, prefix: str, timeout: float) -> list[str]:
    """Deletions on AWS are eventually visible (queues up to 60 s, mappings while Deleting)."""
    deadline = time.monotonic() + timeout
    while True:
        left = find_leftovers(target, prefix)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.5 if target.is_local else 5.0)


# --- waiting and the exactness check ----------------------------------------------------------


def wait_drained(stack: Stack, timeout: float = 120.0) -> None:
    """Local: until the engine has read every shard to its tip with nothing in flight. AWS has
    no such signal; callers there poll the outcome instead (see ``assert_exact``)."""
    control = stack.target.control
    if control is not None:
        assert control.wait_drained(timeout, interval=0.1), f"not drained within {timeout:g} s"


@dataclass(frozen=True)
class Exactness:
    summaries: int
    recounted: int
    drift: list[Drift]
    seconds: float


def check_exact(stack: Stack) -> Exactness:
    """The tools' check (``vstats.drift``: one scan, ``model.recount``, compare), keeping the
    numbers of summaries seen so that an empty table cannot pass as exact."""
    start = time.monotonic()
    snapshot = read_snapshot(stack.client("dynamodb"), stack.table)
    drift = compare(snapshot.recount, snapshot.summaries)
    return Exactness(
        len(snapshot.summaries), len(snapshot.recount), drift, time.monotonic() - start
    )


def assert_exact(stack: Stack, timeout: float | None = None) -> Exactness:
    """Every video and user summary equals the recount of the base items.

    Local: checked once the engine has drained (then it must hold at once). AWS: polled until
    it holds or ``timeout`` (default 300 s) passes, as the pipeline has no drained signal.
    """
    if stack.target.is_local:
        wait_drained(stack)
        result = check_exact(stack)
    else:
        deadline = time.monotonic() + (300.0 if timeout is None else timeout)
        while True:
            result = check_exact(stack)
            if not result.drift or time.monotonic() >= deadline:
                break
            time.sleep(5.0)
    assert not result.drift, describe_drift(result.drift)
    assert result.summaries > 0, "no summaries at all: nothing was aggregated"
    return result


def describe_drift(drifts: list[Drift], limit: int = 20) -> str:
    lines = [f"{len(drifts)} summaries differ from the recount (actual vs expected):"]
    for d in drifts[:limit]:
        lines.append(f"  {d.key.kind.value} {d.key.id}: {d.actual} vs {d.expected}")
    return "\n".join(lines)


def counters_for_prefix(
    recount: Mapping[SummaryKey, Counters], prefix: str
) -> dict[SummaryKey, Counters]:
    return {k: v for k, v in recount.items() if k.id.startswith(prefix)}


# --- load ------------------------------------------------------------------------------------


def run_loadtest(stack: Stack, *, engine_api: bool = True, **config: Any) -> Report:
    """The load test's own engine (vstats.loadtest), run programmatically.

    ``engine_api=False``: the load test gets no control client (it then waits until the touched
    summaries match, as on AWS) and ``faults`` are set through the control API's ``/faults``
    alone, the route every release of the endpoint has: for an endpoint of an earlier release,
    which lacks routes the current load test reads.
    """
    settings: dict[str, Any] = {
        "rate": 150.0,
        "writers": 4,
        "users": 12,
        "videos": 20,
        "probe_interval": 0.0,
        "drain_timeout": 120.0,
        **config,
    }
    control = stack.target.control
    faults = None if engine_api else settings.pop("faults", None)
    test = LoadTest(
        stack.client("dynamodb"),
        stack.table,
        LoadTestConfig(**settings),
        control=control if engine_api else None,
    )
    if faults is not None and control is not None:
        set_faults(stack, **faults)
    try:
        report = test.run()
    finally:
        if faults is not None and control is not None:
            set_faults(stack)
    assert report.failed_writes == 0, report.first_error
    assert report.ok, f"load test mismatches: {[m.as_dict() for m in report.mismatches[:5]]}"
    return report


# --- engine statistics (local) -----------------------------------------------------------------


@dataclass(frozen=True)
class EngineDelta:
    """What the engine counted between two ``/stats`` snapshots, per mapping UUID."""

    before: Mapping[str, Any]
    after: Mapping[str, Any]

    def of(self, uuid: str, name: str) -> int:
        old = self.before.get(uuid, {}).get(name, 0) or 0
        new = self.after.get(uuid, {}).get(name, 0) or 0
        return int(new) - int(old)

    def per_mapping(self, uuids: Mapping[str, str], name: str) -> dict[str, int]:
        return {role: self.of(uuid, name) for role, uuid in uuids.items()}

    def total(self, uuids: Mapping[str, str], name: str) -> int:
        return sum(self.per_mapping(uuids, name).values())


@contextlib.contextmanager
def engine_delta(stack: Stack) -> Iterator[Callable[[], EngineDelta]]:
    """``with engine_delta(stack) as delta: ...; delta().of(uuid, "invocations")``."""
    control = stack.target.control
    assert control is not None, "engine statistics exist only on the local endpoint"
    before = control.stats()
    yield lambda: EngineDelta(before, control.stats())


# Fault injection the scenarios turn on (local endpoint): failed invocations, workers killed
# after the k-th summary write, duplicate batches; and the engine counters that show each.
FAULTS = {"fail_invocation_rate": 0.3, "kill_mid_batch_rate": 0.3, "duplicate_batch_rate": 0.3}
FAULT_COUNTERS = ("injected_failures", "injected_kills", "duplicate_deliveries")


def set_faults(stack: Stack, **faults: Any) -> dict[str, Any]:
    control = stack.target.control
    assert control is not None
    body = {
        "fail_invocation_rate": 0.0,
        "kill_mid_batch_rate": 0.0,
        "duplicate_batch_rate": 0.0,
        "seed": None,
    }
    body.update(faults)
    return control.set_faults(body)


# --- function logs ----------------------------------------------------------------------------


@dataclass
class FunctionLog:
    """The JSON lines a function logged after ``start()``: the local endpoint's log file, or
    CloudWatch Logs on AWS (where events arrive with a delay: ``read`` polls)."""

    stack: Stack
    function: str
    _offset: int = 0
    _since_ms: int = 0
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def path(self) -> Path:
        assert self.stack.target.endpoint is not None
        return self.stack.target.endpoint.state_dir / "logs" / "functions" / f"{self.function}.log"

    def start(self) -> FunctionLog:
        if self.stack.target.is_local:
            self._offset = self.path.stat().st_size if self.path.exists() else 0
        else:
            self._since_ms = int(time.time() * 1000) - 1000
        return self

    def read(self) -> list[dict[str, Any]]:
        if self.stack.target.is_local:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                lines = handle.read().decode(errors="replace").splitlines()
        else:
            lines = self._cloudwatch_lines()
        self.entries = [e for e in map(_json_object, lines) if e is not None]
        return self.entries

    def _cloudwatch_lines(self) -> list[str]:
        logs = self.stack.client("logs")
        lines: list[str] = []
        paginator = logs.get_paginator("filter_log_events")
        for page in paginator.paginate(
            logGroupName=f"/aws/lambda/{self.function}", startTime=self._since_ms
        ):
            lines += [e["message"] for e in page.get("events", [])]
        return lines

    def skipped_sequence_numbers(self) -> list[str]:
        return [
            str(e.get("sequence_number"))
            for e in self.entries
            if e.get("message") == "record skipped"
        ]

    def metric_sum(self, name: str) -> float:
        """Sum of an EMF metric over the entries (Powertools writes lists or numbers)."""
        total = 0.0
        for entry in self.entries:
            if "_aws" not in entry or name not in entry:
                continue
            value = entry[name]
            total += sum(value) if isinstance(value, list) else float(value)
        return total


def _json_object(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


# --- streams ---------------------------------------------------------------------------------


def read_stream(stack: Stack) -> list[dict[str, Any]]:
    """Every record of the table's stream, shard by shard from TRIM_HORIZON to the tip."""
    streams = stack.client("dynamodbstreams")
    shards: list[dict[str, Any]] = []
    request: dict[str, Any] = {"StreamArn": stack.stream_arn}
    while True:
        description = streams.describe_stream(**request)["StreamDescription"]
        shards += description.get("Shards", [])
        last = description.get("LastEvaluatedShardId")
        if not last:
            break
        request["ExclusiveStartShardId"] = last
    records: list[dict[str, Any]] = []
    for shard in shards:
        iterator = streams.get_shard_iterator(
            StreamArn=stack.stream_arn,
            ShardId=shard["ShardId"],
            ShardIteratorType="TRIM_HORIZON",
        ).get("ShardIterator")
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            got = page.get("Records", [])
            records += got
            iterator = page.get("NextShardIterator")
            if not got:  # an open shard's tip (a closed one ends without an iterator)
                break
    return records


# --- figures for the session summary -----------------------------------------------------------

FIGURES: list[str] = []


def record_figure(name: str, **values: Any) -> None:
    text = ", ".join(f"{k}={v}" for k, v in values.items())
    FIGURES.append(f"{name}: {text}")
