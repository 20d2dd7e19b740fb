"""A design (``baseline`` or ``ours``) deployed on the benchmark's private endpoint: what its
stack's outputs name, read back through the endpoint's APIs (its mappings, stream, function
logs, index shapes), and how the projection sees it (its mappings' batching and filters, the
summary items and write costs of a measured run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localcloud.endpoint_process import LocalEndpoint
from localcloud.writestats import IndexShape
from video_stats.model import AttributeMap, SummaryKind
from vstats.effects import ITEM_TYPE_OF_FUNCTION

from benchmark.collect import (
    DeployedMapping,
    LogTail,
    StreamCursor,
    describe_mapping,
    endpoint_client,
    index_shapes,
)
from benchmark.deploy import Stack
from benchmark.figures import DurationModel, FunctionSettings, RunCounts
from benchmark.projection import Batching, Consumer, Design, SummaryShape


@dataclass(slots=True)
class DeployedDesign:
    """One design deployed on the private endpoint, with the readers of what its runs do (not
    ``vstats.deployment.Deployment``, which a tool talks to)."""

    key: str
    stack: Stack
    table: str
    mappings: list[DeployedMapping]
    cursor: StreamCursor
    logs: dict[str, LogTail]
    shapes: list[IndexShape]
    settings: FunctionSettings
    # How the projections batch its records: None as deployed (the reference design); this
    # project's production defaults, whatever window the measured run used.
    projected_batching: Batching | None = None

    def projected_consumers(self) -> tuple[Consumer, ...]:
        """Its mappings as the projection batches them (their deployed filters)."""
        consumers = tuple(deployed_consumer(m) for m in self.mappings)
        if self.projected_batching is None:
            return consumers
        return tuple(c.batched_as(self.projected_batching) for c in consumers)


def read_deployed_design(
    endpoint: LocalEndpoint,
    stack: Stack,
    outputs: dict[str, Any],
    duration: Callable[[int], DurationModel],
) -> DeployedDesign:
    """The design ``stack`` deployed (its Terraform ``outputs``); its functions billed with
    ``duration(memory_mb)``."""
    lam = endpoint_client("lambda", endpoint.endpoint_url)
    mappings = [
        describe_mapping(lam, mapping_uuid, ITEM_TYPE_OF_FUNCTION[role])
        for role, mapping_uuid in sorted(outputs["event_source_mapping_uuids"].items())
    ]
    function_dir = endpoint.state_dir / "logs" / "functions"
    table = str(outputs["table_name"])
    first = mappings[0]
    return DeployedDesign(
        key=stack.key,
        stack=stack,
        table=table,
        mappings=mappings,
        cursor=StreamCursor(
            endpoint_client("dynamodbstreams", endpoint.endpoint_url), str(outputs["stream_arn"])
        ),
        logs={m.uuid: LogTail(function_dir / f"{m.function_name}.log") for m in mappings},
        shapes=index_shapes(endpoint_client("dynamodb", endpoint.endpoint_url), table),
        settings=FunctionSettings(
            memory_mb=first.memory_mb,
            architecture=first.architecture,
            transactional=stack.key == "baseline",
            duration=duration(first.memory_mb),
        ),
    )


def deployed_batching(mapping: DeployedMapping) -> Batching:
    """A deployed mapping's batching, read back from the Lambda API."""
    return Batching(
        batch_size=mapping.batch_size,
        window_seconds=float(mapping.settings.get("MaximumBatchingWindowInSeconds") or 0),
        tumbling_window_seconds=int(mapping.settings.get("TumblingWindowInSeconds") or 0),
    )


def deployed_consumer(mapping: DeployedMapping) -> Consumer:
    """A deployed mapping as the projection batches it (its deployed filter)."""
    batching = deployed_batching(mapping)
    return Consumer(
        item_type=mapping.item_type,
        batch_size=batching.batch_size,
        window_seconds=batching.window_seconds,
        tumbling_window_seconds=batching.tumbling_window_seconds,
        accepts=mapping.filters.matches,
    )


def projected_design(
    deployed: DeployedDesign,
    consumers: tuple[Consumer, ...],
    items: dict[SummaryKind, AttributeMap] | None,
    partitions: int,
    counts: RunCounts,
) -> Design:
    """A deployed design with the summary items one of its runs left (their sizes) and the
    items its write requests wrote (a transaction writes several)."""
    summaries = SummaryShape(
        items=items or {},
        indexes=tuple(deployed.shapes),
        transactional=deployed.settings.transactional,
        measured_partitions=partitions,
    )
    ours = deployed.key == "ours"
    rejected = counts.rejected_writes / counts.summary_write_requests if ours else 0.0
    per_request = 1.0
    if deployed.settings.transactional and counts.summary_write_requests:
        per_request = counts.summary_item_writes / counts.summary_write_requests
    return Design(
        consumers=consumers,
        settings=deployed.settings,
        summaries=summaries,
        writes_every_key=ours,  # video_stats.apply: also a key whose records net to zero
        ranks_by_views=ours,  # video_stats.store: the GSI2 bucket and its fixes
        items_per_request=per_request,
        rejected_per_write=rejected if counts.summary_write_requests else 0.0,
    )
