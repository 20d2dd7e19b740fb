"""What a write or a stream record does to the summaries, for the tools (load test, repair,
benchmark), computed by the handlers' own code, never a copy of their rule.

The rule (``video_stats.model`` / ``video_stats.records``): a record's effect is
``contribution(NewImage) - contribution(OldImage)`` for the function's own item type, and an
image that breaks the item format counts for nothing. ``record_effect`` runs the handlers'
parse-and-merge (``records.parse_batch``) over the one record, so the tools expect exactly
what a function applies; a write's effect is the effect of the stream record it produces, on
every function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from video_stats import model
from video_stats.handlers import ENTRY_POINTS, FUNCTIONS
from video_stats.model import AttributeMap, Counters, ItemType, SummaryKey
from video_stats.records import parse_batch, summary_key

#: The function fed by each item type (``views``/``votes``: the root module's function keys,
#: and the function name in the exactly-once marks), and back.
FUNCTION_OF_ITEM_TYPE: Final[Mapping[ItemType, str]] = FUNCTIONS
ITEM_TYPE_OF_HANDLER: Final[Mapping[str, ItemType]] = ENTRY_POINTS
ITEM_TYPE_OF_FUNCTION: Final[Mapping[str, ItemType]] = {
    function: item_type for item_type, function in FUNCTIONS.items()
}


def is_base_item(item: AttributeMap | None) -> bool:
    """A VIEW or VOTE item (valid or not): what a function is fed."""
    return model.item_type_of(item) in FUNCTION_OF_ITEM_TYPE


# A stream record needs a sequence number to be parsed; one record alone is always in order.
_ONE_RECORD_SEQUENCE = "1"


def batch_effect(
    records: Sequence[Mapping[str, Any]], item_type: ItemType
) -> dict[SummaryKey, Counters]:
    """The net change the function of ``item_type`` applies for one batch of stream records
    (Lambda event format): a key per summary the batch changes somewhere, also where its
    changes cancel out over the batch (zero: no write). A record that leaves a summary as it
    was (an unchanged vote re-put) is no work for the handler and adds no key."""
    batch = parse_batch(records, item_type)
    return {summary_key(key): delta.counters() for key, delta in batch.keys.items()}


def record_effect(record: Mapping[str, Any], item_type: ItemType) -> dict[SummaryKey, Counters]:
    """``batch_effect`` of one record."""
    return batch_effect([record], item_type)


def write_effect(
    new: AttributeMap | None, old: AttributeMap | None, *, retried_put: bool = False
) -> dict[SummaryKey, Counters]:
    """What one write did to the summaries, over both functions: the effect of the stream
    record with images ``new`` and ``old``.

    ``old`` is the item the write replaced or deleted (ReturnValues=ALL_OLD), so the effect is
    exact whatever was in the table before. ``retried_put``: a put that found its own item
    already there (an SDK retry of a write that had succeeded) counts as the insert it was.
    """
    images: dict[str, Any] = {"SequenceNumber": _ONE_RECORD_SEQUENCE}
    if new is not None:
        images["NewImage"] = new
    if old is not None and not retried_put:
        images["OldImage"] = old
    effect: dict[SummaryKey, Counters] = {}
    for item_type in FUNCTION_OF_ITEM_TYPE:
        for key, counters in record_effect({"dynamodb": images}, item_type).items():
            effect[key] = effect.get(key, model.ZERO) + counters
    return effect


def counted_contribution(
    image: AttributeMap | None, item_type: ItemType | None = None
) -> dict[SummaryKey, Counters]:
    """``model.contribution``, with a malformed item counting for nothing (as in the recount
    and the handlers)."""
    try:
        return model.contribution(image, item_type)
    except model.InvalidItem:
        return {}
