"""A latency histogram on fixed buckets: what roll-ups keep, and where percentiles come from.

Fixed bounds let histograms of any hours or days be added bucket by bucket, and a
percentile read from one is within one bucket of the exact one.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence

from django.db.models import Case, IntegerField, Value, When

# Upper bounds in milliseconds; bucket i holds [BOUNDS[i-1], BOUNDS[i]), the last one the rest.
BOUNDS: tuple[int, ...] = (
    25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500,
    2000, 3000, 4000, 5000, 7500, 10000, 15000, 20000, 30000, 60000,
)  # fmt: skip
SIZE = len(BOUNDS) + 1


def empty() -> list[int]:
    return [0] * SIZE


def index(ms: float) -> int:
    return bisect.bisect_right(BOUNDS, ms)


def add(into: list[int], other: Sequence[int]) -> None:
    """Add `other` into `into`, bucket by bucket (extra buckets of `other` are ignored)."""
    for i, n in enumerate(other[:SIZE]):
        into[i] += n


def of(values: Iterable[float]) -> list[int]:
    hist = empty()
    for value in values:
        hist[index(value)] += 1
    return hist


def bounds_of(bucket: int) -> tuple[float, float]:
    low = float(BOUNDS[bucket - 1]) if bucket > 0 else 0.0
    # The open-ended last bucket is read as twice its lower bound wide: a guess, said in the docs.
    high = float(BOUNDS[bucket]) if bucket < len(BOUNDS) else low * 2
    return low, high


def percentile(hist: Sequence[int], q: float) -> float | None:
    """The q-th percentile (0 < q <= 1), by nearest rank, interpolated inside its bucket."""
    total = sum(hist)
    if total == 0:
        return None
    rank = max(math.ceil(q * total), 1)
    seen = 0
    for bucket, n in enumerate(hist):
        if n and seen + n >= rank:
            low, high = bounds_of(bucket)
            return low + (high - low) * (rank - seen) / n
        seen += n
    return None  # unreachable: rank <= total


def sql_index(field: str) -> Case:
    """The bucket of a column's value, computed by the database (NULL values get bucket -1)."""
    whens = [When(**{f"{field}__lt": bound}, then=Value(i)) for i, bound in enumerate(BOUNDS)]
    return Case(
        When(**{f"{field}__isnull": True}, then=Value(-1)),
        *whens,
        default=Value(len(BOUNDS)),
        output_field=IntegerField(),
    )
