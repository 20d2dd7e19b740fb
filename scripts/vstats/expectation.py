"""How the load test knows what to expect: every write asks DynamoDB for the item it replaced
(``ReturnValues=ALL_OLD``), so its effect on the summaries is exactly what the functions will
apply for its stream record (``vstats.effects.write_effect``), whatever the table held before.
The touched summaries are read before the run (baseline) and must end at baseline + the sum of
those effects."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from video_stats import model
from video_stats.model import Counters, SummaryKey

from vstats.load_report import Mismatch


class Expectation:
    """Baseline plus the sum of the effects of every write, per summary (thread-safe)."""

    def __init__(self, baseline: Mapping[SummaryKey, Counters]) -> None:
        self._lock = threading.Lock()
        self.baseline = dict(baseline)
        self.delta: dict[SummaryKey, Counters] = {}

    def add(self, effect: Mapping[SummaryKey, Counters]) -> None:
        with self._lock:
            for key, counters in effect.items():
                self.delta[key] = self.delta.get(key, model.ZERO) + counters

    def touched(self) -> list[SummaryKey]:
        with self._lock:
            return list(self.delta)

    def expected(self, key: SummaryKey) -> Counters:
        with self._lock:
            return self.baseline.get(key, model.ZERO) + self.delta.get(key, model.ZERO)

    def mismatches(self, actual: Mapping[SummaryKey, Counters]) -> list[Mismatch]:
        result = []
        for key in self.touched():
            expected = self.expected(key)
            got = actual.get(key, model.ZERO)
            if got != expected:
                result.append(Mismatch(key, self.baseline.get(key, model.ZERO), expected, got))
        return sorted(result, key=lambda m: (m.key.kind.value, m.key.id))
