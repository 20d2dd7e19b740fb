"""The tumbling-window fields of a stream event (Lambda developer guide, "Using tumbling windows
with DynamoDB", https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-windows.html). Pure.

Every event of a mapping with a window carries the shard's ``shardId``, ``eventSourceARN``,
``window``, ``state``, ``isFinalInvokeForWindow`` and ``isWindowTerminatedEarly``. When the
shard ends (it was closed and read to its end) the open window ends with it: its final
invocation comes then, before any child shard is read; ``isWindowTerminatedEarly`` is true
when that happens before the window's end time (the least favourable reading: the guide names
only the 1 MB state limit as a reason to end early).
"""

from __future__ import annotations

import time
from typing import Any


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def window_fields(
    *,
    shard_id: str,
    stream_arn: str,
    window: tuple[float, float],
    state: Any,
    final: bool,
    terminated_early: bool = False,
) -> dict[str, Any]:
    return {
        "shardId": shard_id,
        "eventSourceARN": stream_arn,
        "window": {"start": iso(window[0]), "end": iso(window[1])},
        "state": state,
        "isFinalInvokeForWindow": final,
        "isWindowTerminatedEarly": terminated_early,
    }
