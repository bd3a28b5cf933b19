"""A fixed-size latency histogram: constant memory per call, mergeable across calls and processes.

Buckets are log-spaced (8 per octave from 1 µs), so a percentile read from them is within ~9 %
of the true value; per-frame recording is one `log2` and one list increment.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

_PER_OCTAVE = 8
_BUCKETS = 8 * 24  # 1 µs .. ~16 s


def _index(seconds: float) -> int:
    us = seconds * 1e6
    if us <= 1.0:
        return 0
    return min(_BUCKETS - 1, int(math.log2(us) * _PER_OCTAVE) + 1)


def _upper_us(index: int) -> float:
    return 2 ** (index / _PER_OCTAVE)


class LatencyHistogram:
    __slots__ = ("count", "counts", "max_s", "sum_s")

    def __init__(self) -> None:
        self.counts = [0] * _BUCKETS
        self.count = 0
        self.sum_s = 0.0
        self.max_s = 0.0

    def record(self, seconds: float) -> None:
        self.counts[_index(seconds)] += 1
        self.count += 1
        self.sum_s += seconds
        if seconds > self.max_s:
            self.max_s = seconds

    def merge(self, other: LatencyHistogram) -> None:
        for i, c in enumerate(other.counts):
            if c:
                self.counts[i] += c
        self.count += other.count
        self.sum_s += other.sum_s
        self.max_s = max(self.max_s, other.max_s)

    def percentile_ms(self, p: float) -> float:
        """Upper edge of the bucket holding the p-th percentile (nearest rank), in ms."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(self.count * p / 100.0))
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank:
                return min(_upper_us(i) / 1000.0, self.max_s * 1000.0)
        return self.max_s * 1000.0

    def to_json(self) -> dict[str, object]:
        return {
            "count": self.count,
            "sum_ms": round(self.sum_s * 1000.0, 3),
            "max_ms": round(self.max_s * 1000.0, 3),
            "p50_ms": round(self.percentile_ms(50), 3),
            "p99_ms": round(self.percentile_ms(99), 3),
            "buckets": {str(i): c for i, c in enumerate(self.counts) if c},
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> LatencyHistogram:
        h = cls()
        buckets = data.get("buckets") or {}
        assert isinstance(buckets, dict)
        for k, v in buckets.items():
            h.counts[int(k)] = int(v)
        h.count = int(data.get("count") or 0)  # type: ignore[call-overload]
        h.sum_s = float(data.get("sum_ms") or 0.0) / 1000.0  # type: ignore[arg-type]
        h.max_s = float(data.get("max_ms") or 0.0) / 1000.0  # type: ignore[arg-type]
        return h

    @classmethod
    def merged(cls, parts: Iterable[LatencyHistogram]) -> LatencyHistogram:
        out = cls()
        for p in parts:
            out.merge(p)
        return out
