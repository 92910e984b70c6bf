"""Fixed latency buckets: where a value falls, percentiles read back, and the same bucketing in SQL."""

from __future__ import annotations

import math
import random

import pytest

from llm.history import histogram
from llm.history.histogram import BOUNDS, SIZE
from llm.models import Probe


def exact_percentile(values: list[float], q: float) -> float:
    """Nearest rank, the textbook way: the ceil(q * n)-th smallest value."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


def test_it_puts_each_bound_in_the_bucket_it_opens() -> None:
    assert histogram.index(0) == 0
    assert histogram.index(24.999) == 0
    for i, bound in enumerate(BOUNDS):
        assert histogram.index(bound - 0.001) == i
        assert histogram.index(bound) == i + 1
    assert histogram.index(10**9) == SIZE - 1 == len(BOUNDS)


def test_every_bucket_holds_its_own_bounds() -> None:
    for bucket in range(SIZE):
        low, high = histogram.bounds_of(bucket)
        assert low < high
        assert histogram.index(low) == bucket
        if bucket < len(BOUNDS):
            assert histogram.index(high) == bucket + 1
            assert histogram.index(high - 0.001) == bucket
    assert histogram.bounds_of(0)[0] == 0.0
    assert histogram.bounds_of(SIZE - 1) == (60000.0, 120000.0)


def test_of_counts_every_value_once() -> None:
    hist = histogram.of([1, 24, 25, 99, 100, 60000, 70000])

    assert len(hist) == SIZE
    assert sum(hist) == 7
    assert (hist[0], hist[1], hist[3], hist[4], hist[SIZE - 1]) == (2, 1, 1, 1, 2)


def test_add_sums_bucket_by_bucket_and_ignores_extra_buckets() -> None:
    into = histogram.of([10, 200])
    histogram.add(into, [*histogram.of([10, 5000]), 99, 99])

    assert len(into) == SIZE
    assert into == histogram.of([10, 10, 200, 5000])


def test_an_empty_histogram_has_no_percentile() -> None:
    assert histogram.percentile(histogram.empty(), 0.5) is None


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("q", [0.01, 0.5, 0.9, 0.95, 0.99, 1.0])
def test_a_percentile_lies_in_the_bucket_of_the_exact_one(seed: int, q: float) -> None:
    rng = random.Random(seed)
    # Skewed like real latencies: mostly fast, a long tail, a few past the last bound.
    values = [rng.lognormvariate(6, 1.2) for _ in range(rng.randint(1, 3000))]
    values += [rng.uniform(60000, 90000) for _ in range(rng.randint(0, 5))]

    estimate = histogram.percentile(histogram.of(values), q)

    exact = exact_percentile(values, q)
    low, high = histogram.bounds_of(histogram.index(exact))
    assert estimate is not None
    assert low <= estimate <= high, (exact, estimate)


def test_a_percentile_of_one_value_is_in_its_bucket() -> None:
    for value in (0.0, 30.0, 999.0, 59999.0, 61000.0):
        low, high = histogram.bounds_of(histogram.index(value))
        for q in (0.01, 0.5, 1.0):
            estimate = histogram.percentile(histogram.of([value]), q)
            assert estimate is not None and low <= estimate <= high


def test_percentiles_follow_the_ranks_across_buckets() -> None:
    # 90 fast values and 10 slow ones: p50 among the fast, p95 among the slow.
    hist = histogram.of([30.0] * 90 + [8000.0] * 10)

    p50, p90, p95 = (histogram.percentile(hist, q) for q in (0.5, 0.9, 0.95))

    assert p50 is not None and 25 <= p50 <= 50
    assert p90 is not None and 25 <= p90 <= 50  # the 90th value is still a fast one
    assert p95 is not None and 7500 <= p95 <= 10000


@pytest.mark.django_db
def test_sql_index_agrees_with_index_on_real_rows() -> None:
    rng = random.Random(7)
    edges = [v for bound in BOUNDS for v in (bound - 0.001, float(bound), bound + 0.001)]
    values: list[float | None] = [0.0, 0.4, *edges, 1e7, None]
    values += [rng.uniform(0, 80000) for _ in range(300)]
    Probe._default_manager.bulk_create(
        [Probe(tier="local", ok=value is not None, latency_ms=value) for value in values]
    )

    rows = Probe._default_manager.annotate(h=histogram.sql_index("latency_ms")).values_list("latency_ms", "h")

    assert len(rows) == len(values)
    for latency, bucket in rows:
        assert bucket == (-1 if latency is None else histogram.index(latency)), latency
