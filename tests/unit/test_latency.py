"""Log-bucket latency histogram: percentiles, merging, serialisation, Prometheus lines."""

from __future__ import annotations

import json
import math
import random
import re

import pytest

from receptionist.bridge.latency import LatencyHistogram

BUCKET_ERROR = 2 ** (1 / 8)  # 8 buckets per octave: upper edge / value <= 1.0905


def true_percentile_ms(values: list[float], p: float) -> float:
    """Nearest-rank percentile, in ms."""
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * p / 100))
    return ordered[rank - 1] * 1000


def hist_of(values: list[float]) -> LatencyHistogram:
    h = LatencyHistogram()
    for v in values:
        h.record(v)
    return h


def assert_within_bucket(estimate: float, truth: float) -> None:
    # the estimate is the bucket's upper edge (capped at max): never below, at most ~9 % above
    assert truth * (1 - 1e-9) <= estimate <= truth * BUCKET_ERROR * (1 + 1e-9), (estimate, truth)


DISTRIBUTIONS = {
    "uniform_1_200ms": lambda r: r.uniform(0.001, 0.2),
    "lognormal_around_50ms": lambda r: r.lognormvariate(math.log(0.05), 0.8),
    "exponential_20ms": lambda r: r.expovariate(1 / 0.02),
    "bimodal": lambda r: r.choice([r.gauss(0.005, 0.0005), r.gauss(0.8, 0.05)]),
    "microseconds": lambda r: r.uniform(2e-6, 900e-6),
}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("p", [1, 10, 50, 90, 95, 99, 99.9, 100])
def test_percentiles_within_bucket_error(name: str, p: float) -> None:
    rng = random.Random(name)
    values = [abs(DISTRIBUTIONS[name](rng)) + 2e-6 for _ in range(5000)]
    h = hist_of(values)
    assert_within_bucket(h.percentile_ms(p), true_percentile_ms(values, p))


def test_single_value() -> None:
    h = hist_of([0.0123])
    for p in (0, 1, 50, 100):
        assert h.percentile_ms(p) == pytest.approx(12.3)  # capped at the max
    assert h.count == 1
    assert h.sum_s == pytest.approx(0.0123)
    assert h.max_s == pytest.approx(0.0123)


def test_known_small_set() -> None:
    values = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    h = hist_of(values)
    assert_within_bucket(h.percentile_ms(50), 50.0)
    assert_within_bucket(h.percentile_ms(90), 90.0)
    assert h.percentile_ms(100) == pytest.approx(100.0)
    assert h.sum_s == pytest.approx(sum(values))


def test_tiny_and_zero_values_land_in_first_bucket() -> None:
    h = hist_of([0.0, 5e-7, 1e-6])
    assert h.counts[0] == 3
    assert h.percentile_ms(100) == pytest.approx(0.001)


def test_huge_values_are_clamped_not_lost() -> None:
    h = hist_of([60.0, 120.0])
    assert h.count == 2
    assert h.counts[-1] == 2
    assert h.max_s == 120.0
    assert h.percentile_ms(100) > 10_000  # still reads as "over ten seconds"


def test_empty_histogram() -> None:
    h = LatencyHistogram()
    assert h.count == 0
    assert h.percentile_ms(50) == 0.0
    assert h.percentile_ms(99) == 0.0
    data = h.to_json()
    assert data["count"] == 0
    assert data["buckets"] == {}
    assert data["p50_ms"] == 0.0
    back = LatencyHistogram.from_json(data)
    assert back.count == 0
    assert back.counts == h.counts
    assert LatencyHistogram.merged([]).count == 0


def test_merge_equals_recording_everything_in_one() -> None:
    rng = random.Random(7)
    parts = [[rng.lognormvariate(-3, 1) for _ in range(rng.randint(0, 500))] for _ in range(6)]
    everything = hist_of([v for part in parts for v in part])

    merged = LatencyHistogram()
    for part in parts:
        merged.merge(hist_of(part))
    also = LatencyHistogram.merged(hist_of(part) for part in parts)

    for h in (merged, also):
        assert h.counts == everything.counts
        assert h.count == everything.count
        assert h.max_s == everything.max_s
        assert h.sum_s == pytest.approx(everything.sum_s)
        for p in (50, 90, 99):
            assert h.percentile_ms(p) == everything.percentile_ms(p)


def test_merge_leaves_other_untouched() -> None:
    a, b = hist_of([0.01]), hist_of([0.02, 0.03])
    a.merge(b)
    assert b.count == 2
    assert a.count == 3
    a.merge(LatencyHistogram())
    assert a.count == 3


def test_json_round_trip() -> None:
    rng = random.Random(11)
    h = hist_of([rng.uniform(0.0001, 2.0) for _ in range(1000)])
    data = json.loads(json.dumps(h.to_json()))  # survives a real JSON encoding
    back = LatencyHistogram.from_json(data)
    assert back.counts == h.counts
    assert back.count == h.count
    assert back.sum_s == pytest.approx(h.sum_s, abs=1e-6)
    assert back.max_s == pytest.approx(h.max_s, abs=1e-6)
    for p in (50, 90, 99, 100):
        assert back.percentile_ms(p) == pytest.approx(h.percentile_ms(p), abs=1e-3)
    assert back.to_json() == h.to_json()


def test_to_json_shape() -> None:
    h = hist_of([0.010, 0.020, 0.500])
    data = h.to_json()
    assert set(data) == {"count", "sum_ms", "max_ms", "p50_ms", "p99_ms", "buckets"}
    assert data["count"] == 3
    assert data["sum_ms"] == pytest.approx(530.0)
    assert data["max_ms"] == pytest.approx(500.0)
    assert_within_bucket(data["p50_ms"], 20.0)
    assert data["p99_ms"] == pytest.approx(500.0)
    buckets = data["buckets"]
    assert isinstance(buckets, dict)
    assert sum(buckets.values()) == 3
    assert all(isinstance(k, str) for k in buckets)


def test_from_json_merges_with_live_histograms() -> None:
    a, b = hist_of([0.01, 0.02]), hist_of([0.2])
    total = LatencyHistogram.merged([LatencyHistogram.from_json(a.to_json()), b])
    assert total.count == 3
    assert total.counts == hist_of([0.01, 0.02, 0.2]).counts


LINE = re.compile(r'^(?P<name>\w+)_bucket\{(?P<labels>[^}]*?,)?le="(?P<le>[^"]+)"\} (?P<v>\d+)$')
