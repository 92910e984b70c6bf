"""Incidents, downtime and uptime over any window, read from the incident and absence rows.

One query per kind of row, through the (scope, ended) and (scope, started) indexes: the
rows that overlap the window, however long ago they began. Downtime is the union of the
incidents' time inside a window, so two processes' overlapping incidents (console runs
included) are not counted twice. Uptime counts only the time a tier was expected to
answer: not before its first recorded state, nor while it was never found, disabled,
unconfigured, paused or over its budget.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Min, Q

from llm.history import local_time
from llm.models import Absence, Incident, TierStatus
from serdabot.redact import redact

ZERO = timedelta(0)


@dataclass(frozen=True, slots=True)
class Period:
    tier: str
    kind: str  # "incident", or an Absence.Kind value
    start: datetime
    end: datetime | None  # None: ongoing
    state: str
    error: str
    detail: str
    role: str = ""

    @property
    def ongoing(self) -> bool:
        return self.end is None

    def duration(self, now: datetime) -> timedelta:
        return (self.end or now) - self.start

    def overlap(self, start: datetime, end: datetime, now: datetime) -> timedelta:
        lo, hi = max(self.start, start), min(self.end or now, end)
        return max(hi - lo, ZERO)


@dataclass(frozen=True, slots=True)
class Uptime:
    percent: float | None  # None: the tier was never expected to answer in the span
    expected: timedelta
    downtime: timedelta


@dataclass(frozen=True, slots=True)
class MonthSummary:
    month: datetime  # the month's first local instant
    incidents: int
    downtime: timedelta


@dataclass(slots=True)
class Availability:
    """Every incident and absence overlapping [start, end), and each tier's first recorded state."""

    start: datetime
    end: datetime
    now: datetime
    incidents: list[Period]
    absences: list[Period]
    first_seen: dict[str, datetime]

    def incidents_in(self, start: datetime, end: datetime) -> list[Period]:
        """Newest first."""
        found = [p for p in self.incidents if p.start < end and (p.end is None or p.end > start)]
        return sorted(found, key=lambda p: p.start, reverse=True)

    def downtime(self, start: datetime, end: datetime, tier: str | None = None) -> timedelta:
        return _union(self.incidents, start, end, self.now, tier)

    def uptime(self, tier: str, start: datetime, end: datetime) -> Uptime:
        first = self.first_seen.get(tier)
        if first is None or first >= end:
            return Uptime(None, ZERO, ZERO)
        start = max(start, first)
        absent = _union(self.absences, start, end, self.now, tier)
        expected = (end - start) - absent
        down = min(self.downtime(start, end, tier), expected)
        if expected <= ZERO:
            return Uptime(None, ZERO, ZERO)
        return Uptime(100.0 * (1 - down / expected), expected, down)

    def months(self, count: int = 3) -> list[MonthSummary]:
        """This month and the ones before, newest first; an incident counts in every month it touches."""
        summaries = []
        month_end = self.now
        for month_start in month_starts(self.now, count):
            touching = self.incidents_in(month_start, month_end)
            summaries.append(MonthSummary(month_start, len(touching), self.downtime(month_start, month_end)))
            month_end = month_start
        return summaries


def _union(
    periods: Iterable[Period], start: datetime, end: datetime, now: datetime, tier: str | None
) -> timedelta:
    spans = sorted(
        (max(p.start, start), min(p.end or now, end))
        for p in periods
        if (tier is None or p.tier == tier) and p.start < end and (p.end or now) > start
    )
    total, reach = ZERO, start
    for lo, hi in spans:
        lo = max(lo, reach)
        if hi > lo:
            total += hi - lo
            reach = hi
    return total


def month_starts(now: datetime, months: int) -> list[datetime]:
    """The first local instant of this month and of the `months - 1` before it, newest first."""
    local = now.astimezone(local_time.zone())
    first = local_time.midnight(local.date().replace(day=1).toordinal())
    result = [first]
    for _month in range(months - 1):
        previous = (first.astimezone(local_time.zone()).date() - timedelta(days=1)).replace(day=1)
        first = local_time.midnight(previous.toordinal())
        result.append(first)
    return result


def load(start: datetime, end: datetime, now: datetime, scopes: tuple[str, ...]) -> Availability:
    overlapping = Q(scope__in=scopes, started__lt=end) & (Q(ended__isnull=True) | Q(ended__gt=start))
    columns = ("tier", "started", "ended", "state", "cause", "detail", "role")
    incidents = [
        # Redacted when read too, as every history text shown: a server's error may quote a key.
        Period(tier, "incident", begun, ended, state, redact(cause), redact(detail), role)
        for tier, begun, ended, state, cause, detail, role in Incident._default_manager.filter(overlapping)
        .order_by()
        .values_list(*columns)
    ]
    absences = [
        Period(tier, kind, begun, ended, state, cause, detail, role)
        for tier, kind, begun, ended, state, cause, detail, role in Absence._default_manager.filter(
            overlapping
        )
        .order_by()
        .values_list("tier", "kind", *columns[1:])
    ]
    first_seen = dict(
        TierStatus._default_manager.filter(scope__in=scopes)
        .values("tier")
        .annotate(first=Min("first_seen"))
        .values_list("tier", "first")
    )
    return Availability(start, end, now, incidents, absences, first_seen)
