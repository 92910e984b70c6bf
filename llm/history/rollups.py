"""Hourly and daily roll-ups of probes and calls, kept by the history writer as it writes.

One `Rollup` row per (period, local start, scope, series, key) holds a count, the
successes (probes) and a latency histogram (llm.history.histogram). Windows longer
than a day read these instead of millions of raw rows. `rebuild()` recomputes them
from the raw rows (`manage.py rebuildrollups`), for history written before they
existed or after TIME_ZONE changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet

from llm.history import histogram
from llm.history.local_time import Starts, ceil_day
from llm.history.scopes import scope_of
from llm.models import CascadeCall, Probe, Rollup

PERIODS = (Rollup.Period.HOUR.value, Rollup.Period.DAY.value)
RowKey = tuple[str, datetime, str, str, str]  # period, start, scope, series, key
REBUILD_CHUNK = 20_000


@dataclass(slots=True)
class Tally:
    count: int = 0
    ok: int = 0
    total_ms: float = 0.0
    hist: list[int] = field(default_factory=histogram.empty)

    def add(self, ok: bool, ms: float | None) -> None:
        self.count += 1
        if ok:
            self.ok += 1
        if ms is not None and ok:
            self.total_ms += ms
            self.hist[histogram.index(ms)] += 1

    def merge(self, other: Tally) -> None:
        self.count += other.count
        self.ok += other.ok
        self.total_ms += other.total_ms
        histogram.add(self.hist, other.hist)


class Tallies:
    """Roll-up deltas for a set of raw rows, before they are added to the table."""

    def __init__(self, starts: Starts | None = None) -> None:
        self.rows: dict[RowKey, Tally] = {}
        self._starts = starts or Starts()

    def _add(self, created: datetime, role: str, series: str, key: str, ok: bool, ms: float | None) -> None:
        scope = scope_of(role)
        for period, start in zip(PERIODS, self._starts.of(created), strict=True):
            row = (period, start, scope, series, key)
            tally = self.rows.get(row)
            if tally is None:
                tally = self.rows[row] = Tally()
            tally.add(ok, ms)

    def probe(self, created: datetime, role: str, tier: str, ok: bool, latency_ms: float | None) -> None:
        self._add(created, role, Rollup.Series.PROBE, tier, ok, latency_ms)

    def call(
        self, created: datetime, role: str, source: str, latency_ms: float, first_token_ms: float | None
    ) -> None:
        self._add(created, role, Rollup.Series.REPLY, source, True, latency_ms)
        if first_token_ms is not None:
            self._add(created, role, Rollup.Series.FIRST_TOKEN, source, True, first_token_ms)

    def rows_of(self, rows: Iterable[object]) -> Tallies:
        """Add the probes and calls among `rows` (model instances; other kinds are skipped)."""
        for row in rows:
            if isinstance(row, Probe):
                self.probe(row.created, row.role, row.tier, row.ok, row.latency_ms)
            elif isinstance(row, CascadeCall):
                self.call(row.created, row.role, row.source, row.latency_ms, row.first_token_ms)
        return self


def apply(tallies: Tallies) -> None:
    """Add the deltas to the roll-up rows, safely beside other writers (call inside a transaction).

    Missing rows are inserted empty first (a conflict means another process did it), then
    locked and added to: two workers adding to one hour never lose each other's counts.
    """
    if not tallies.rows:
        return
    manager = Rollup._default_manager
    # In one order everywhere: two writers inserting the same new hours never wait on each other crosswise.
    keys = sorted(tallies.rows)
    manager.bulk_create(
        [Rollup(period=p, start=s, scope=sc, series=se, key=k) for p, s, sc, se, k in keys],
        ignore_conflicts=True,
    )
    match = Q()
    for period, start, scope, series, key in keys:
        match |= Q(period=period, start=start, scope=scope, series=series, key=key)
    found = list(manager.select_for_update().filter(match).order_by("pk"))
    for row in found:
        tally = tallies.rows.get((row.period, row.start, row.scope, row.series, row.key))
        if tally is None:
            continue
        row.count += tally.count
        row.ok += tally.ok
        row.total_ms += tally.total_ms
        hist = histogram.empty()
        histogram.add(hist, row.histogram or [])
        histogram.add(hist, tally.hist)
        row.histogram = hist
    manager.bulk_update(found, ["count", "ok", "total_ms", "histogram"])


def _tally(rows: QuerySet[Any, Any], add: Callable[..., None], chunk: int) -> int:
    """Feed every row to `add`, read in chunks (a year is millions of rows); returns how many."""
    count = 0
    for values in rows.order_by().iterator(chunk_size=chunk):
        add(*values)
        count += 1
    return count


def rebuild(*, chunk: int = REBUILD_CHUNK) -> dict[str, int]:
    """Recompute the roll-ups from the raw probes and calls; returns rows read and written.

    Only from the first whole local day the raw rows still cover: older roll-ups outlive
    the raw rows' retention (a year of charts from 90 days of rows) and are kept as they
    are. Tallied in memory (a year is tens of thousands of roll-up rows), then written in
    one transaction with the replaced ones deleted: the page never sees half a rebuild.
    """
    earliest: list[datetime] = []
    for model in (Probe, CascadeCall):
        first = model._default_manager.order_by("created").values_list("created", flat=True).first()
        if first is not None:
            earliest.append(first)
    if not earliest:
        return {"probes": 0, "calls": 0, "rollups": 0}
    since = ceil_day(min(earliest))
    starts = Starts()
    tallies = Tallies(starts)
    probe_rows = Probe._default_manager.filter(created__gte=since).values_list(
        "created", "role", "tier", "ok", "latency_ms"
    )
    probes = _tally(probe_rows, tallies.probe, chunk)
    call_rows = CascadeCall._default_manager.filter(created__gte=since).values_list(
        "created", "role", "source", "latency_ms", "first_token_ms"
    )
    calls = _tally(call_rows, tallies.call, chunk)
    rows = [
        Rollup(
            period=p,
            start=s,
            scope=sc,
            series=se,
            key=k,
            count=t.count,
            ok=t.ok,
            total_ms=t.total_ms,
            histogram=t.hist,
        )
        for (p, s, sc, se, k), t in tallies.rows.items()
    ]
    with transaction.atomic():
        Rollup._default_manager.filter(start__gte=since).delete()
        Rollup._default_manager.bulk_create(rows, batch_size=2000)
    return {"probes": probes, "calls": calls, "rollups": len(rows)}
