"""The benchmark's run, start to end (I/O): a private endpoint, both designs deployed
(``deploy``, read back by ``deployed_design``), each workload measured on each
(``measured_run``), both projected to the production shape with their full bill
(``projected_runs``), results.json with its report and chart (``results``), teardown.

``Bench(options, console).run()`` does everything ``make bench`` promises and always destroys
both stacks and stops its endpoint, after a failure or Ctrl-C too (SIGTERM is turned into
Ctrl-C by the entry point). Every run of a configuration on a workload starts from a drained
pipeline and reset endpoint counters, so everything read afterwards belongs to that run.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from build_lambda_zip import build_zip
from localcloud.client import ControlClient
from localcloud.endpoint_process import EndpointProcess, LocalEndpoint
from rich.console import Console
from video_stats.model import AttributeMap, ItemType, SummaryKind
from vstats import cli

from benchmark.bill import LogShape, StackResources, vcpu_share
from benchmark.collect import endpoint_client
from benchmark.deploy import Stack, Terraform, deploy_stacks, design_stacks, destroy_stacks
from benchmark.deployed_design import DeployedDesign, deployed_batching, read_deployed_design
from benchmark.figures import DurationModel, RunCounts
from benchmark.handler import CpuCost, measure_cpu
from benchmark.measured_run import measure_run
from benchmark.options import OURS_ZIP, REFERENCE_SOURCE, TEARDOWN_RESERVE, Options
from benchmark.projected_runs import project_runs, projection_meta
from benchmark.projection import Batching
from benchmark.report import readme_table
from benchmark.resources import read_stack_resources
from benchmark.results import assemble_results, machine, write_outputs
from benchmark.targets import evaluate_targets


@dataclass(slots=True)
class Outcome:
    summary: str
    report_path: Path
    chart_path: Path
    results_path: Path
    targets_met: bool  # every scored target met (``--strict`` fails the command otherwise)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Bench:
    options: Options
    console: Console
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    # (config, workload) -> the largest summary item of each kind the run left
    summary_items: dict[tuple[str, str], dict[SummaryKind, AttributeMap]] = field(
        default_factory=dict
    )
    # The root module's stream_mapping when nobody sets it (terraform console), and the
    # batching the projections take from it.
    production_mapping: dict[str, Any] = field(default_factory=dict)
    production_batching: Batching | None = None
    # The full bill's measurements: each run's log output per function (config, workload) ->
    # item type -> shape; what each stack holds; this project's CPU time per write and record.
    log_shapes: dict[tuple[str, str], dict[ItemType, LogShape]] = field(default_factory=dict)
    resources: dict[str, StackResources] = field(default_factory=dict)
    cpu: CpuCost | None = None

    # --- the whole run -------------------------------------------------------------------------

    def run(self) -> Outcome:
        options = self.options
        started = time.monotonic()
        deadline = started + options.time_budget
        out = options.output_dir
        self._fresh_workspace(out)
        zips = self._package(out)
        process: EndpointProcess | None = None
        terraform: Terraform | None = None
        stacks: dict[str, Stack] = {}
        runs: dict[str, dict[str, RunCounts]] = {}
        deployments: dict[str, DeployedDesign] = {}
        interrupted = False
        try:
            process, endpoint = self._start_endpoint(out / "endpoint")
            terraform = Terraform(endpoint.endpoint_url, out / "logs")
            stacks = design_stacks(zips, out, options.batching_window)
            outputs = self._deploy(terraform, stacks)
            deployments = {
                key: read_deployed_design(
                    endpoint, stacks[key], outputs[key], partial(self._duration, key)
                )
                for key in stacks
            }
            for key, deployment in deployments.items():
                self.resources[key] = read_stack_resources(
                    lambda service: endpoint_client(service, endpoint.endpoint_url),
                    deployment.stack.variables["name_prefix"],
                    deployment.table,
                    [m.function_name for m in deployment.mappings],
                )
            if "ours" in deployments:
                deployments["ours"].projected_batching = self.production_batching
            control = ControlClient(endpoint.control_url, timeout=30.0)
            for workload in options.workloads:
                for key in options.configs:
                    remaining = deadline - time.monotonic() - TEARDOWN_RESERVE
                    if remaining < 60:
                        skipped = f"{key} on {workload.key}: over the time budget"
                        self.skipped.append(skipped)
                        self.console.print(f"[yellow]skipped: {skipped}[/]")
                        continue
                    measured = measure_run(
                        endpoint.endpoint_url,
                        control,
                        deployments[key],
                        workload,
                        options,
                        remaining=remaining,
                        console=self.console,
                        notes=self.notes,
                    )
                    self.timings[f"run:{key}:{workload.key}"] = measured.seconds
                    self.log_shapes[(key, workload.key)] = measured.log_shapes
                    self.summary_items[(key, workload.key)] = measured.summary_items
                    runs.setdefault(key, {})[workload.key] = measured.counts
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            self._teardown(process, terraform, stacks)
            if runs:
                self.timings["total"] = round(time.monotonic() - started, 1)
                self.results = self._write(runs, deployments, terraform, interrupted)
        return self._outcome()

    # --- preparation ---------------------------------------------------------------------------

    def _fresh_workspace(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        # State of an earlier bench belongs to an endpoint that no longer exists.
        for name in ("tf", "endpoint", "runs", "logs"):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("report.md", "chart.png", "results.json"):
            (out / name).unlink(missing_ok=True)

    def _package(self, out: Path) -> dict[str, Path]:
        zips: dict[str, Path] = {}
        if "baseline" in self.options.configs:
            zips["baseline"] = out / "reference.zip"
            build_zip([REFERENCE_SOURCE], zips["baseline"])
        if "ours" in self.options.configs:
            # A copy: `make package` elsewhere must not change the zip under a running apply.
            zips["ours"] = out / "ours.zip"
            shutil.copyfile(OURS_ZIP, zips["ours"])
        return zips

    def _start_endpoint(self, state_dir: Path) -> tuple[EndpointProcess, LocalEndpoint]:
        self.console.print("starting the private local endpoint ...")
        t0 = time.monotonic()
        # The stream shape of every table (localcloud's settings): one shard by default, which
        # keeps the write lower bound exact (the functions log batch sizes, not their shards).
        shape = {
            "LOCALCLOUD_STREAM_PARTITIONS": str(self.options.partitions),
            "LOCALCLOUD_SHARD_ROTATION_SECONDS": f"{self.options.rotation_seconds:g}",
        }
        process = EndpointProcess(state_dir, server_module="benchmark.endpoint", environment=shape)
        try:
            endpoint = process.start()
        except RuntimeError as exc:
            raise cli.ToolError(str(exc)) from None
        self.timings["endpoint_start"] = round(time.monotonic() - t0, 1)
        self.console.print(f"endpoint {endpoint.endpoint_url} (control {endpoint.control_url})")
        return process, endpoint

    def _deploy(self, terraform: Terraform, stacks: dict[str, Stack]) -> dict[str, dict[str, Any]]:
        self.console.print(f"deploying {', '.join(stacks)} with Terraform (in parallel) ...")
        t0 = time.monotonic()
        deployed = deploy_stacks(terraform, stacks)
        self.timings["deploy"] = round(time.monotonic() - t0, 1)
        self.console.print(f"deployed in {self.timings['deploy']:.0f} s")
        if deployed.production_mapping is not None:
            try:
                self.production_batching = Batching.from_stream_mapping(deployed.production_mapping)
            except ValueError as exc:
                raise cli.ToolError(f"the root module's default {exc}") from None
            self.production_mapping = deployed.production_mapping
        return deployed.outputs

    def _duration(self, key: str, memory_mb: int) -> DurationModel:
        """The billed duration model: as given, and for this project (unless
        ``--ours-duration`` was given) plus the CPU time per write request and per record
        measured on one core (``handler.measure_cpu``) divided by the function's vCPU share
        (docs/design.md §6)."""
        given = self.options.durations[key]
        if key != "ours" or not self.options.measure_cpu:
            return given
        if self.cpu is None:
            self.console.print("measuring the handlers' CPU time per record and write ...")
            self.cpu = measure_cpu(repeat=2)
        share = vcpu_share(memory_mb)
        return DurationModel(
            given.fixed_ms, self.cpu.ms_per_write / share, self.cpu.ms_per_record / share
        )

    # --- teardown and outputs ------------------------------------------------------------------

    def _teardown(
        self, process: EndpointProcess | None, terraform: Terraform | None, stacks: dict[str, Stack]
    ) -> None:
        """Destroy both stacks (in parallel), then stop the endpoint; a second Ctrl-C does not
        stop the endpoint from being stopped."""
        t0 = time.monotonic()
        try:
            if terraform is not None and stacks:
                self.console.print("destroying the stacks ...")
                for failure in destroy_stacks(terraform, stacks):
                    self.console.print(f"[yellow]{failure}[/]")
                    self.notes.append(f"teardown: {failure}")
        except KeyboardInterrupt:
            self.console.print("[yellow]interrupted: stopping the endpoint without destroying[/]")
        finally:
            if process is not None:
                process.stop()
                self.console.print("endpoint stopped")
            self.timings["teardown"] = round(time.monotonic() - t0, 1)

    def _write(
        self,
        runs: dict[str, dict[str, RunCounts]],
        deployments: dict[str, DeployedDesign],
        terraform: Terraform | None,
        interrupted: bool,
    ) -> dict[str, Any]:
        if interrupted:
            self.notes.append("interrupted (Ctrl-C): only the runs that finished are reported")
        self.notes.append(
            "The endpoint runs with benchmark.endpoint's TransactWriteItems patch: stock moto "
            "deep-copies the whole table before every transaction (about 0.8 s at 1,500 items, "
            "growing with the table), which would make the reference design's drain time "
            "measure moto, not its invocations. Semantics are unchanged."
        )
        projections: dict[str, dict[str, list[dict[str, Any]]]] = {}
        bill: dict[str, Any] = {}
        if not interrupted:
            t0 = time.monotonic()
            projections, bill = project_runs(
                runs,
                deployments,
                summary_items=self.summary_items,
                log_shapes=self.log_shapes,
                resources=self.resources,
                cpu=self.cpu,
                options=self.options,
                console=self.console,
            )
            if projections:
                self.timings["projection"] = round(time.monotonic() - t0, 1)
        meta: dict[str, Any] = {
            "total_seconds": self.timings.get("total"),
            "timings_seconds": {**self.timings, **(terraform.timings if terraform else {})},
            "skipped": self.skipped,
            "notes": self.notes,
            "machine": machine(),
        }
        if "ours" in deployments:
            meta["stream_mapping"] = self._stream_mapping_meta(deployments["ours"])
        if projections:
            meta["projection"] = projection_meta(self.options, self.production_mapping)
        results = assemble_results(
            self.options,
            runs,
            {key: d.settings for key, d in deployments.items()},
            {
                key: [
                    {
                        "function_name": m.function_name,
                        "item_type": m.item_type,
                        "settings": m.settings,
                    }
                    for m in d.mappings
                ]
                for key, d in deployments.items()
            },
            meta,
        )
        for workload, tables in projections.items():
            for config in ("baseline", "ours"):
                if workload in results.get(config, {}):
                    results[config][workload].update(tables)
        if bill:
            results["full_bill"] = bill.pop("rows")
            results["break_even_events_per_day"] = bill.pop("break_even_events_per_day")
            results["full_bill_detail"] = bill
        results["skipped"] = list(self.skipped)
        write_outputs(self.options.output_dir, results, self.console)
        return results

    def _stream_mapping_meta(self, ours: DeployedDesign) -> dict[str, Any]:
        """This project's batching: the measured run's (set and read back) and the production
        defaults the projections use."""
        return {
            "measured_variable": ours.stack.variables.get("stream_mapping"),
            "measured": {m.function_name: deployed_batching(m).as_dict() for m in ours.mappings},
            "production": self.production_mapping,
            "production_source": "terraform console of the root module without the measured "
            "run's -var: jsonencode(var.stream_mapping)",
        }

    def _outcome(self) -> Outcome:
        results = self.results
        out = self.options.output_dir
        targets = evaluate_targets(results)
        # The docs/benchmark.md table carries the full bill's table, break-even and fixed cost.
        lines = [readme_table(results), "", "targets:"]
        for target in targets:
            met = {True: "met", False: "MISSED", None: "not measured"}[target.met]
            lines.append(f"  {met:>12}  {target.name} ({target.workload}): {target.detail}")
        for skipped in self.skipped:
            lines.append(f"skipped: {skipped}")
        return Outcome(
            summary="\n".join(lines),
            report_path=out / "report.md",
            chart_path=out / "chart.png",
            results_path=out / "results.json",
            targets_met=not any(t.met is False for t in targets),
        )
