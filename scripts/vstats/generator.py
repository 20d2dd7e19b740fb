"""The load test's event generator: pure, deterministic for a seed (apart from timestamps,
which come from an injectable clock), no I/O.

It produces the operations an application would: new views and votes, changed and removed
votes, removed views, for users and videos drawn with a Zipf popularity skew. Items are built
by ``video_stats.model`` (docs/design.md §2); what a write did to the summaries is
``vstats.effects.write_effect``.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from video_stats import model
from video_stats.model import SummaryKey

MIX_KEYS: Final = (
    "views",
    "likes",
    "dislikes",
    "changed-votes",
    "removed-votes",
    "removed-views",
)
DEFAULT_MIX: Final = (
    "views=0.6,likes=0.15,dislikes=0.1,changed-votes=0.05,removed-votes=0.05,removed-views=0.05"
)
MAX_ENTITIES: Final = 100_000
MAX_VIEW_SECONDS: Final = 600
_MS: Final = timedelta(milliseconds=1)

Action = Literal["put", "delete"]
Item = dict[str, dict[str, str]]


def parse_mix(text: str) -> dict[str, float]:
    """``views=0.6,likes=0.2,...`` -> normalised weights. Missing kinds weigh 0.

    Raises ValueError (one readable sentence) for unknown kinds, bad or negative numbers, or
    an all-zero mix.
    """
    weights = dict.fromkeys(MIX_KEYS, 0.0)
    seen: set[str] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"mix entry {part!r} is not KIND=WEIGHT")
        if name not in weights:
            raise ValueError(f"unknown mix kind {name!r} (known: {', '.join(MIX_KEYS)})")
        if name in seen:
            raise ValueError(f"mix kind {name!r} given twice")
        seen.add(name)
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"mix weight {value!r} of {name!r} is not a number") from None
        if not weight >= 0 or weight == float("inf"):
            raise ValueError(f"mix weight of {name!r} must be a finite number >= 0")
        weights[name] = weight
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("the mix needs at least one kind with a weight > 0")
    return {name: weight / total for name, weight in weights.items()}


class Zipf:
    """Ranks 0..n-1 with P(k) proportional to 1/(k+1)**skew (skew 0 = uniform)."""

    def __init__(self, n: int, skew: float) -> None:
        if n < 1:
            raise ValueError("n must be >= 1")
        if skew < 0:
            raise ValueError("skew must be >= 0")
        self._cumulative = list(itertools.accumulate(1.0 / (k + 1) ** skew for k in range(n)))

    def sample(self, rng: random.Random) -> int:
        total = self._cumulative[-1]
        rank = bisect.bisect_right(self._cumulative, rng.random() * total)
        return min(rank, len(self._cumulative) - 1)


@dataclass(frozen=True, slots=True)
class Operation:
    """One write: a PutItem of ``item``, or a DeleteItem of ``key``."""

    kind: str  # the mix kind this operation realises
    action: Action
    key: Item
    item: Item | None = None


@dataclass(slots=True)
class _Pool:
    """A set with O(1) random choice and removal."""

    entries: list[Any] = field(default_factory=list)
    index: dict[Any, int] = field(default_factory=dict)

    def add(self, entry: Any) -> None:
        if entry not in self.index:
            self.index[entry] = len(self.entries)
            self.entries.append(entry)

    def pick(self, rng: random.Random) -> Any:
        return self.entries[rng.randrange(len(self.entries))]

    def remove(self, entry: Any) -> None:
        position = self.index.pop(entry)
        last = self.entries.pop()
        if position < len(self.entries):
            self.entries[position] = last
            self.index[last] = position

    def __len__(self) -> int:
        return len(self.entries)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EventGenerator:
    """An endless, seeded stream of operations; ``next()`` is not thread-safe (lock it).

    Changes and removals pick among the views and votes this generator has written; when there
    is none yet, a new view is written instead (its ``kind`` then says "views").
    """

    def __init__(
        self,
        *,
        users: int,
        videos: int,
        skew: float = 1.0,
        mix: Mapping[str, float] | None = None,
        seed: int | None = None,
        id_prefix: str = "",
        clock: Callable[[], datetime] = _utc_now,
        max_view_seconds: int = MAX_VIEW_SECONDS,
    ) -> None:
        if not 1 <= users <= MAX_ENTITIES or not 1 <= videos <= MAX_ENTITIES:
            raise ValueError(f"users and videos must be between 1 and {MAX_ENTITIES}")
        self.users = users
        self.videos = videos
        self.id_prefix = id_prefix
        self._rng = random.Random(seed)
        self._user_rank = Zipf(users, skew)
        self._video_rank = Zipf(videos, skew)
        weights = dict(mix) if mix is not None else parse_mix(DEFAULT_MIX)
        self._kinds = [k for k in MIX_KEYS if weights.get(k, 0) > 0]
        self._cumulative = list(itertools.accumulate(weights[k] for k in self._kinds))
        self._clock = clock
        self._last_ts: datetime | None = None
        self._max_view_seconds = max_view_seconds
        self._views = _Pool()  # (user, video, timestamp) of views written
        self._votes: dict[tuple[str, str], model.VoteType] = {}
        self._vote_pool = _Pool()  # (user, video) with a current vote

    def user_id(self, rank: int) -> str:
        return f"{self.id_prefix}{rank}"

    def video_id(self, rank: int) -> str:
        return f"{self.id_prefix}{rank}"

    def all_summary_keys(self) -> list[SummaryKey]:
        """Every summary this generator can touch (for baselining before a run)."""
        return [
            *(SummaryKey(model.SummaryKind.USER, self.user_id(u)) for u in range(self.users)),
            *(SummaryKey(model.SummaryKind.VIDEO, self.video_id(v)) for v in range(self.videos)),
        ]

    def timestamp(self) -> datetime:
        """The clock's time, at millisecond precision, strictly increasing: view keys of one
        run never collide, so every view is an INSERT."""
        now = self._clock().astimezone(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_ts is not None and now <= self._last_ts:
            now = self._last_ts + _MS
        self._last_ts = now
        return now

    def __iter__(self) -> Iterator[Operation]:
        while True:
            yield self.next()

    def next(self) -> Operation:
        position = self._rng.random() * self._cumulative[-1]
        kind = self._kinds[
            min(bisect.bisect_right(self._cumulative, position), len(self._kinds) - 1)
        ]
        if kind in ("likes", "dislikes"):
            user, video = self._pick_pair()
            return self._vote(kind, user, video, "LIKE" if kind == "likes" else "DISLIKE")
        if kind == "changed-votes" and self._vote_pool:
            user, video = self._vote_pool.pick(self._rng)
            flipped: model.VoteType = "DISLIKE" if self._votes[(user, video)] == "LIKE" else "LIKE"
            return self._vote(kind, user, video, flipped)
        if kind == "removed-votes" and self._vote_pool:
            pair = self._vote_pool.pick(self._rng)
            self._vote_pool.remove(pair)
            del self._votes[pair]
            vote = model.vote_item(pair[0], pair[1], "LIKE")
            return Operation(kind, "delete", {"PK": vote["PK"], "SK": vote["SK"]})
        if kind == "removed-views" and self._views:
            user, video, ts = self._views.pick(self._rng)
            self._views.remove((user, video, ts))
            view = model.view_item(user, video, 0, ts)
            return Operation(kind, "delete", {"PK": view["PK"], "SK": view["SK"]})
        user, video = self._pick_pair()
        ts = self.timestamp()
        seconds = self._rng.randint(1, self._max_view_seconds)
        item = model.view_item(user, video, seconds, ts)
        self._views.add((user, video, ts))
        return Operation("views", "put", {"PK": item["PK"], "SK": item["SK"]}, item)

    def _pick_pair(self) -> tuple[str, str]:
        return (
            self.user_id(self._user_rank.sample(self._rng)),
            self.video_id(self._video_rank.sample(self._rng)),
        )

    def _vote(self, kind: str, user: str, video: str, vote_type: model.VoteType) -> Operation:
        item = model.vote_item(user, video, vote_type)
        self._votes[(user, video)] = vote_type
        self._vote_pool.add((user, video))
        return Operation(kind, "put", {"PK": item["PK"], "SK": item["SK"]}, item)
