"""A DynamoDB stream event source mapping as the engine uses it, read from moto's model."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from localcloud.filters import CompiledFilters, PatternError, compile_filter_criteria
from localcloud.motopatch import LATEST_POSITIONS_ATTR

log = logging.getLogger("localcloud.engine")


@dataclass(frozen=True, slots=True)
class MappingConfig:
    uuid: str
    account: str
    region: str
    function_arn: str
    function_name: str
    stream_arn: str
    enabled: bool
    batch_size: int
    window: float  # MaximumBatchingWindowInSeconds
    starting_position: str
    # LATEST: per open shard at creation, the last sequence number then (None: from its
    # first record); shards already closed then are never read.
    latest_positions: Any
    filters: CompiledFilters
    max_retries: int
    max_age: int
    bisect: bool
    report_failures: bool
    destination_arn: str | None
    tumbling_window: int = 0
    parallelization_factor: int = 1

    def start_of(self, shard_id: str) -> tuple[str, str | None] | None:
        """How a new reader of ``shard_id`` starts: (iterator type, sequence number), or None
        when the mapping never reads that shard (closed before a LATEST mapping existed)."""
        if self.starting_position != "LATEST" or not isinstance(self.latest_positions, dict):
            return "TRIM_HORIZON", None
        if shard_id in self.latest_positions.get("closed", ()):
            return None
        opened = self.latest_positions.get("open") or {}
        if opened.get(shard_id) is not None:
            return "AFTER_SEQUENCE_NUMBER", str(opened[shard_id])
        return "TRIM_HORIZON", None  # empty then, or a child shard opened since


def mapping_config(esm: Any) -> MappingConfig | None:
    """From moto's ``EventSourceMapping``; None for other sources or invalid filters."""
    source = str(esm.event_source_arn)
    if ":dynamodb:" not in source or "/stream/" not in source:
        return None
    try:
        filters = compile_filter_criteria(esm.filter_criteria)
    except PatternError as exc:
        log.error("mapping %s: invalid filter criteria ignored (%s)", esm.uuid, exc)
        return None
    destination = ((esm.destination_config or {}).get("OnFailure") or {}).get("Destination")
    enabled = esm.enabled
    if isinstance(enabled, str):
        enabled = enabled.lower() == "true"
    return MappingConfig(
        uuid=esm.uuid,
        account=esm.account_id,
        region=esm.region,
        function_arn=esm.function_arn,
        function_name=esm.function_arn.split(":")[6],
        stream_arn=source,
        enabled=bool(enabled),
        batch_size=int(esm.batch_size or 100),
        window=float(esm.max_batch_window or 0),
        starting_position=str(esm.starting_position or "TRIM_HORIZON"),
        latest_positions=getattr(esm, LATEST_POSITIONS_ATTR, None),
        filters=filters,
        max_retries=-1 if esm.max_retry_attempts is None else int(esm.max_retry_attempts),
        max_age=-1 if esm.max_record_age is None else int(esm.max_record_age),
        bisect=bool(esm.bisect_on_error),
        report_failures="ReportBatchItemFailures" in (esm.function_response_types or []),
        destination_arn=destination or None,
        tumbling_window=int(esm.tumbling_window or 0),
        parallelization_factor=int(getattr(esm, "parallelization_factor", None) or 1),
    )
