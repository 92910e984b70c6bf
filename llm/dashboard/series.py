"""Counts and latency histograms per bucket: roll-ups for whole hours and days, raw rows for the rest.

A window is cut in pieces: [start, first whole local hour) and [last whole hour, end)
from the raw rows, the whole hours between from the hourly roll-ups, and, when
the chart's buckets are days or weeks, the whole days from the daily ones. Windows of
a day or less read raw rows only. Either way the totals are exact, and the latest
(unfinished) hour is always read from the rows themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db.models import Count, F, IntegerField, QuerySet, Sum, Value

from llm.dashboard.buckets import Buckets
from llm.dashboard.epoch import EpochBucket
from llm.history import histogram, local_time
from llm.history.rollups import Tally
from llm.history.scopes import CONSOLE_ROLES
from llm.models import CascadeCall, Probe, Rollup, Scope, Tier

PROBE, REPLY, FIRST_TOKEN = (s.value for s in Rollup.Series)
SeriesKey = tuple[str, str]  # (series, tier or source)


@dataclass(slots=True)
class Aggregates:
    buckets: Buckets
    cells: dict[SeriesKey, dict[int, Tally]] = field(default_factory=dict)
    totals: dict[SeriesKey, Tally] = field(default_factory=dict)

    def add(self, key: SeriesKey, number: int, count: int, ok: int, total_ms: float, hist: list[int]) -> None:
        for tally in (
            self.cells.setdefault(key, {}).setdefault(number, Tally()),
            self.totals.setdefault(key, Tally()),
        ):
            tally.count += count
            tally.ok += ok
            tally.total_ms += total_ms
            histogram.add(tally.hist, hist)

    def total(self, series: str, key: str) -> Tally:
        return self.totals.get((series, key)) or Tally()


def aggregate(buckets: Buckets, scopes: Iterable[str]) -> Aggregates:
    scopes = tuple(scopes)
    result = Aggregates(buckets)
    for source, start, end in pieces(buckets):
        if start >= end:
            continue
        if source == "raw":
            _raw(result, start, end, scopes)
        else:
            _rollups(result, source, start, end, scopes)
    return result


def pieces(buckets: Buckets) -> list[tuple[str, datetime, datetime]]:
    """(source, start, end) covering the window once: "raw", "hour" or "day"."""
    start, end = buckets.start, buckets.end
    if buckets.sub_hour:
        return [("raw", start, end)]
    first_hour, last_hour = local_time.ceil_hour(start), local_time.hour_start(end)
    if first_hour >= last_hour:
        return [("raw", start, end)]
    middle = [("hour", first_hour, last_hour)]
    if buckets.unit in ("day", "week"):
        first_day, last_day = local_time.ceil_day(first_hour), local_time.day_start(last_hour)
        if first_day < last_day:
            middle = [
                ("hour", first_hour, first_day),
                ("day", first_day, last_day),
                ("hour", last_day, last_hour),
            ]
    return [("raw", start, first_hour), *middle, ("raw", last_hour, end)]


def _rollups(
    result: Aggregates, period: str, start: datetime, end: datetime, scopes: tuple[str, ...]
) -> None:
    rows = (
        Rollup._default_manager.filter(period=period, start__gte=start, start__lt=end, scope__in=scopes)
        .order_by()
        .values_list("series", "key", "start", "count", "ok", "total_ms", "histogram")
    )
    index_of = result.buckets.index_of
    for series, key, begins, count, ok, total_ms, hist in rows:
        result.add((series, key), index_of(begins), count, ok, total_ms, hist or [])


def _bot_only(query: QuerySet, scopes: tuple[str, ...]) -> QuerySet:  # type: ignore[type-arg]
    return query if Scope.CONSOLE.value in scopes else query.exclude(role__in=CONSOLE_ROLES)


def _raw(result: Aggregates, start: datetime, end: datetime, scopes: tuple[str, ...]) -> None:
    buckets = result.buckets
    if buckets.sub_hour:
        seconds, offset = buckets.step * 60, _offset(start)
        bucket: EpochBucket | Value = EpochBucket(F("created"), seconds, offset)

        def number_of(value: int) -> int:
            return buckets.index_of(datetime.fromtimestamp(value * seconds - offset, tz=UTC))
    else:
        # The piece lies inside one bucket: whole local hours or more.
        bucket = Value(0, output_field=IntegerField())  # a constant: Django leaves it out of GROUP BY
        fixed = buckets.index_of(start)

        def number_of(value: int) -> int:
            return fixed

    probes = _bot_only(
        Probe._default_manager.filter(tier__in=Tier.values, created__gte=start, created__lt=end), scopes
    )
    rows = (
        probes.order_by()
        .annotate(b=bucket, h=histogram.sql_index("latency_ms"))
        .values("tier", "b", "ok", "h")
        .annotate(n=Count("pk"), ms=Sum("latency_ms"))
        .values_list("tier", "b", "ok", "h", "n", "ms")
    )
    for tier, number, ok, index, n, ms in rows:
        hist = histogram.empty()
        if ok and index >= 0:
            hist[index] = n
        result.add((PROBE, tier), number_of(number), n, n if ok else 0, (ms or 0.0) if ok else 0.0, hist)
    calls = _bot_only(CascadeCall._default_manager.filter(created__gte=start, created__lt=end), scopes)
    for series, column in ((REPLY, "latency_ms"), (FIRST_TOKEN, "first_token_ms")):
        query = calls if series == REPLY else calls.filter(first_token_ms__isnull=False)
        rows = (
            query.order_by()
            .annotate(b=bucket, h=histogram.sql_index(column))
            .values("source", "b", "h")
            .annotate(n=Count("pk"), ms=Sum(column))
            .values_list("source", "b", "h", "n", "ms")
        )
        for source, number, index, n, ms in rows:
            hist = histogram.empty()
            if index >= 0:
                hist[index] = n
            result.add((series, source), number_of(number), n, n, ms or 0.0, hist)


def _offset(moment: datetime) -> int:
    delta = moment.astimezone(local_time.zone()).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def percentiles(tally: Tally) -> tuple[float | None, float | None]:
    return histogram.percentile(tally.hist, 0.5), histogram.percentile(tally.hist, 0.95)
