"""Per-bucket results kept once a bucket is over: long windows only query their newest buckets.

A bucket that ended more than SETTLE ago no longer changes (the recorder writes rows
within seconds), so its aggregate is computed once and kept in Django's cache: a
30-day chart then reads one or two buckets from the database instead of 30 days of
rows. Buckets are aligned on their width, so every window of the same width shares them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from django.core.cache import cache

from llm.dashboard.buckets import WIDTHS, Buckets

T = TypeVar("T")
SETTLE = timedelta(minutes=5)
TIMEOUT = 6 * 3600
PREFIX = "llm.dashboard.buckets"
NAMES = ("latency", "replies")


def by_bucket(
    name: str,
    buckets: Buckets,
    now: datetime,
    compute: Callable[[int, datetime, datetime], dict[int, T]],
) -> dict[int, T]:
    """`compute(seconds, start, end)` for the window's buckets, from the cache for those that are over.

    `compute` returns bucket number -> value for the buckets of `seconds` that have rows in [start, end).
    """
    key = f"{PREFIX}.{name}.{buckets.seconds}"
    kept: dict[int, T | None] = cache.get(key) or {}
    numbers = buckets.numbers()
    settled = buckets.number_of(now - SETTLE)  # buckets below this number are over
    missing = [n for n in numbers if n >= settled or n not in kept]
    if missing:
        # One query from the oldest bucket needed to the end of the window.
        fresh = compute(buckets.seconds, buckets.start_of(missing[0]), buckets.start_of(numbers[-1] + 1))
        for number in numbers[numbers.index(missing[0]) :]:
            if number < settled:
                kept[number] = fresh.get(number)
        cache.set(key, _trim(kept), TIMEOUT)
    else:
        fresh = {}
    result: dict[int, T] = {}
    for number in numbers:
        value = fresh[number] if number in fresh else kept.get(number) if number < settled else None
        if value is not None:
            result[number] = value
    return result


def _trim(kept: dict[int, T | None]) -> dict[int, T | None]:
    # Keep at most a few windows' worth of buckets per width, newest first.
    if len(kept) <= 400:
        return kept
    return dict(sorted(kept.items())[-400:])


def clear() -> None:
    """Forget every kept bucket (after history was deleted or rewritten)."""
    cache.delete_many([f"{PREFIX}.{name}.{width}" for name in NAMES for width in WIDTHS])
