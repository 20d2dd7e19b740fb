"""The item format (docs/design.md §2) and what a base item contributes to the summaries (§3).

Pure: no boto3, no I/O. Items are DynamoDB AttributeValue maps (``{"S": ...}``/``{"N": ...}``)
exactly as they appear in stream images and in boto3 *client* results.

The one rule every aggregate is built from: a base item (VIEW or VOTE) *contributes* a fixed
amount to two summaries, the video's and the user's. A stream record's effect is then
``contribution(NewImage) - contribution(OldImage)``, which covers every row of §3 (and a type
change), and a full recount is the sum of the contributions of all base items. Both use the same
validity rule, so a malformed item is ignored identically by the handlers and by ``recount``.

Validity (a malformed VIEW/VOTE raises ``InvalidItem``; it then contributes nothing):

* ``userId`` and ``videoId``: string (``S``) attributes, non-empty, at most 1 KB (1,024 bytes of
  UTF-8).
* VIEW ``duration``: a number (``N``) attribute whose value is finite, non-negative and whole.
  "Whole" is numeric: ``"300"``, ``"300.0"`` and ``"3E+2"`` are all 300 (DynamoDB normalises
  numbers, so a stored 300.0 arrives as ``"300"`` anyway); ``"300.5"``, ``"-1"``, a string
  ``{"S": "300"}`` or a missing duration are invalid. It must also be at most ``MAX_DURATION``
  (about 31,700 years), which keeps every sum far inside DynamoDB's 38-digit numbers so a summary
  update can never fail on overflow and block a shard.
* VOTE ``voteType``: exactly ``"LIKE"`` or ``"DISLIKE"`` (upper case, as §2 says).

An item whose ``type`` is not VIEW/VOTE (summaries included) is not a base item: it contributes
nothing and is not an error.
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

AttributeMap = Mapping[str, Mapping[str, Any]]
ItemType = Literal["VIEW", "VOTE"]
VoteType = Literal["LIKE", "DISLIKE"]

MAX_ID_BYTES: Final = 1024
MAX_DURATION: Final = 10**12
SUMMARY_SK: Final = "SUMMARY"
#: Every exactly-once mark on a summary item starts with this (``marks``: ``@v…``/``@o…``).
MARK_PREFIX: Final = "@"
#: The previous, longer mark format (``applied#views#…``), still honoured during an upgrade.
LEGACY_MARK_PREFIX: Final = "applied#"
#: The data model's attributes (docs/design.md §2), the only non-key attributes GSI1 projects.
DATA_MODEL_ATTRIBUTES: Final = (
    "type",
    "userId",
    "videoId",
    "duration",
    "voteType",
    "views",
    "likes",
    "dislikes",
)


class SummaryKind(enum.StrEnum):
    VIDEO = "VIDEO"
    USER = "USER"


@dataclass(frozen=True, slots=True)
class SummaryKey:
    kind: SummaryKind
    id: str


@dataclass(frozen=True, slots=True)
class Counters:
    views: int = 0
    duration: int = 0
    likes: int = 0
    dislikes: int = 0

    def __add__(self, other: Counters) -> Counters:
        return Counters(
            self.views + other.views,
            self.duration + other.duration,
            self.likes + other.likes,
            self.dislikes + other.dislikes,
        )

    def __sub__(self, other: Counters) -> Counters:
        return Counters(
            self.views - other.views,
            self.duration - other.duration,
            self.likes - other.likes,
            self.dislikes - other.dislikes,
        )

    def __neg__(self) -> Counters:
        return Counters(-self.views, -self.duration, -self.likes, -self.dislikes)

    def is_zero(self) -> bool:
        return not (self.views or self.duration or self.likes or self.dislikes)


ZERO: Final = Counters()


class InvalidItem(ValueError):
    """A VIEW/VOTE item that breaks the §2 format; ``reason`` says how (for logs)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- base items -----------------------------------------------------------------------------

#: (userId, videoId, views, duration, likes, dislikes): one base item's contribution to each of
#: its two summaries. A plain tuple because the stream hot path builds one per image.
Vector = tuple[str, str, int, int, int, int]

_VOTE_VECTORS: Final[dict[str, tuple[int, int]]] = {"LIKE": (1, 0), "DISLIKE": (0, 1)}


def _string(attr: object) -> object:
    """The ``S`` value of an AttributeValue (the dict test first: it is the hot path)."""
    if attr.__class__ is dict or isinstance(attr, Mapping):
        return attr.get("S")
    return None


def _string_id(image: AttributeMap, name: str) -> str:
    value = _string(image.get(name))
    if value.__class__ is not str or not value:
        raise InvalidItem(f"{name} missing, empty or not a string")
    assert isinstance(value, str)
    # 4 bytes per character at most: only long ids need encoding to be measured.
    if len(value) > MAX_ID_BYTES // 4 and len(value.encode("utf-8")) > MAX_ID_BYTES:
        raise InvalidItem(f"{name} longer than {MAX_ID_BYTES} bytes")
    return value


def _duration(image: AttributeMap) -> int:
    attr = image.get("duration")
    text = attr.get("N") if attr.__class__ is dict or isinstance(attr, Mapping) else None
    if text.__class__ is not str:
        raise InvalidItem("duration missing or not a number")
    assert isinstance(text, str)
    if text.isdigit() and text.isascii():  # the common case, cheap
        seconds = int(text)
    else:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise InvalidItem(f"duration {text[:40]!r} is not a number") from None
        if not value.is_finite() or value < 0 or value != value.to_integral_value():
            raise InvalidItem(f"duration {text[:40]!r} is not a finite non-negative whole number")
        seconds = int(value)
    if seconds > MAX_DURATION:
        raise InvalidItem(f"duration {text[:40]!r} exceeds {MAX_DURATION}")
    return seconds


def item_type_of(image: AttributeMap | None) -> str | None:
    """The ``type`` string of an item, or None."""
    if not image:
        return None
    value = _string(image.get("type"))
    return value if isinstance(value, str) else None


def contribution_vector(
    image: AttributeMap | None, item_type: ItemType | None = None
) -> Vector | None:
    """The contribution of one base item as a flat tuple (the allocation-light form of
    ``contribution``); None when the image is absent or not a base item (of ``item_type``)."""
    if not image:
        return None
    kind = _string(image.get("type"))
    if kind == "VIEW":
        if item_type is not None and item_type != "VIEW":
            return None
        return (
            _string_id(image, "userId"),
            _string_id(image, "videoId"),
            1,
            _duration(image),
            0,
            0,
        )
    if kind == "VOTE":
        if item_type is not None and item_type != "VOTE":
            return None
        user_id = _string_id(image, "userId")
        video_id = _string_id(image, "videoId")
        vote = _string(image.get("voteType"))
        pair = _VOTE_VECTORS.get(vote) if vote.__class__ is str else None
        if pair is None:
            raise InvalidItem(f"voteType {str(vote)[:40]!r} is not LIKE or DISLIKE")
        return (user_id, video_id, 0, 0, pair[0], pair[1])
    return None


def contribution(
    image: AttributeMap | None, item_type: ItemType | None = None
) -> dict[SummaryKey, Counters]:
    """What one base item adds to the summaries: {video summary: c, user summary: c}.

    {} for None, summary items, items of other types, or (if ``item_type`` is given) base items
    of the other type. Raises ``InvalidItem`` for a malformed VIEW/VOTE item.
    """
    vector = contribution_vector(image, item_type)
    if vector is None:
        return {}
    user_id, video_id, views, duration, likes, dislikes = vector
    counters = Counters(views, duration, likes, dislikes)
    return {
        SummaryKey(SummaryKind.VIDEO, video_id): counters,
        SummaryKey(SummaryKind.USER, user_id): counters,
    }


def recount(items: Iterable[AttributeMap]) -> dict[SummaryKey, Counters]:
    """Full recount of the summaries from base items (summary and other items are ignored).

    Invalid base items contribute nothing. A key appears only if some valid base item
    contributes to it, so compare with ``.get(key, Counters())``: a summary item whose counters
    are all zero equals an absent one.
    """
    totals: dict[SummaryKey, Counters] = {}
    for item in items:
        try:
            parts = contribution(item)
        except InvalidItem:
            continue
        for key, counters in parts.items():
            totals[key] = totals.get(key, ZERO) + counters
    return totals


# --- item builders --------------------------------------------------------------------------


def format_timestamp(ts: datetime) -> str:
    """ISO-8601 UTC with milliseconds: ``2022-01-02T17:05:29.123+00:00``.

    A naive datetime is taken to be UTC already.
    """
    utc = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds")


def view_item(
    user_id: str, video_id: str, duration: int, timestamp: datetime
) -> dict[str, dict[str, str]]:
    """A view item exactly as §2 specifies."""
    ts = format_timestamp(timestamp)
    return {
        "PK": {"S": f"USER#{user_id}"},
        "SK": {"S": f"VIDEO#{video_id}#VIEW#{ts}"},
        "type": {"S": "VIEW"},
        "userId": {"S": user_id},
        "videoId": {"S": video_id},
        "duration": {"N": str(int(duration))},
        "GSI1PK": {"S": f"VIDEO#{video_id}"},
        "GSI1SK": {"S": f"VIEW#{ts}#USER#{user_id}"},
    }


def vote_item(user_id: str, video_id: str, vote_type: VoteType) -> dict[str, dict[str, str]]:
    """A vote item exactly as §2 specifies (one per user and video; voting again overwrites)."""
    return {
        "PK": {"S": f"USER#{user_id}"},
        "SK": {"S": f"VIDEO#{video_id}#VOTE"},
        "type": {"S": "VOTE"},
        "userId": {"S": user_id},
        "videoId": {"S": video_id},
        "voteType": {"S": vote_type},
        "GSI1PK": {"S": f"VIDEO#{video_id}"},
        "GSI1SK": {"S": f"{vote_type}#USER#{user_id}"},
    }


# --- summary items --------------------------------------------------------------------------

_PK_PREFIX: Final = {SummaryKind.VIDEO: "VIDEO#", SummaryKind.USER: "USER#"}
_ID_ATTRIBUTE: Final = {SummaryKind.VIDEO: "videoId", SummaryKind.USER: "userId"}


def summary_type(kind: SummaryKind) -> str:
    """``VIDEO_SUMMARY`` / ``USER_SUMMARY``."""
    return f"{kind.value}_SUMMARY"


def summary_id_attribute(kind: SummaryKind) -> str:
    """``videoId`` / ``userId``."""
    return _ID_ATTRIBUTE[kind]


def summary_item_key(key: SummaryKey) -> dict[str, dict[str, str]]:
    """Primary key of a summary: ``{"PK": {"S": "VIDEO#3"}, "SK": {"S": "SUMMARY"}}``."""
    return {"PK": {"S": _PK_PREFIX[key.kind] + key.id}, "SK": {"S": SUMMARY_SK}}


def summary_key_of(item: AttributeMap) -> SummaryKey | None:
    """The key of a summary item (by its PK/SK); None for any other item."""
    sk = item.get("SK")
    if not isinstance(sk, Mapping) or sk.get("S") != SUMMARY_SK:
        return None
    pk_attr = item.get("PK")
    pk = pk_attr.get("S") if isinstance(pk_attr, Mapping) else None
    if not isinstance(pk, str):
        return None
    for kind, prefix in _PK_PREFIX.items():
        if pk.startswith(prefix) and len(pk) > len(prefix):
            return SummaryKey(kind, pk[len(prefix) :])
    return None


def summary_counters(item: AttributeMap) -> Counters:
    """The four counters of a summary item; a missing counter is 0."""

    def number(name: str) -> int:
        attr = item.get(name)
        text = attr.get("N") if isinstance(attr, Mapping) else None
        return int(Decimal(text)) if isinstance(text, str) else 0

    return Counters(number("views"), number("duration"), number("likes"), number("dislikes"))


def summary_index_partition(key: SummaryKey, shards: int) -> str:
    """GSI2 partition of a summary: ``VIDEO_SUMMARY#<crc32(id) % shards>``."""
    return f"{summary_type(key.kind)}#{zlib.crc32(key.id.encode('utf-8')) % shards}"


def is_mark_attribute(name: str) -> bool:
    """True for an exactly-once mark of a summary item, in either format (the one test every
    tool uses to tell bookkeeping from data)."""
    return name.startswith((MARK_PREFIX, LEGACY_MARK_PREFIX))


def summary_index_bucket(views: int) -> str:
    """GSI2 range key: the power-of-two bucket of ``views`` (``"00"`` for 0 or less, else the
    bit length, ``"01"`` for 1, ``"11"`` for 1,024-2,047), zero-padded so string order is
    numeric order. It changes about log2(views) times in a summary's life, so almost no
    summary update moves the item in the index (see ``store``)."""
    return f"{max(views, 0).bit_length():02d}"


def summary_identity(key: SummaryKey, index_shards: int) -> dict[str, dict[str, str]]:
    """A summary's identity attributes: type, id, GSI1 keys (videos) and GSI2 hash key. Every
    writer of a summary sets exactly these (the handlers on each update, repair on a rewrite);
    the GSI2 range key follows ``views`` (``summary_index_bucket``)."""
    identity = {
        "type": {"S": summary_type(key.kind)},
        summary_id_attribute(key.kind): {"S": key.id},
        "GSI2PK": {"S": summary_index_partition(key, index_shards)},
    }
    if key.kind is SummaryKind.VIDEO:
        identity["GSI1PK"] = {"S": f"VIDEO#{key.id}"}
        identity["GSI1SK"] = {"S": SUMMARY_SK}
    return identity
