"""Incidents, downtime and uptime over any window, read from the incident and absence rows.

Every figure is a query on the (scope, started, ended, tier, seconds) index: periods
that lie wholly inside a range are counted and their `seconds` summed by the
database; only the few that cross one of its ends (at most one per tier and scope
at each end) come back as rows. So a year's window costs as much as its rows' index
entries, not their dates. One scope's periods of one tier never overlap; with console
runs included they may, and downtime is then the union of the rows' time, read in
Python (a filter the streamer asks for, rarely).

Uptime counts only the time a tier was expected to answer: not before its first
recorded state, nor while it was never found, disabled, unconfigured, paused or over
its budget.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Min, Q, Sum

from llm.history import local_time
from llm.models import Absence, Incident, Scope, TierStatus

ZERO = timedelta(0)
PeriodModel = type[Incident] | type[Absence]


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


def _overlapping(start: datetime, end: datetime, scopes: tuple[str, ...]) -> Q:
    return Q(scope__in=scopes, started__lt=end) & (Q(ended__isnull=True) | Q(ended__gt=start))


class Availability:
    """Queries over the incident and absence rows of some scopes, as seen at `now`."""

    def __init__(self, scopes: tuple[str, ...], now: datetime) -> None:
        self.scopes = scopes
        self.now = now
        self._first_seen: dict[str, datetime] | None = None
        self._cache: dict[tuple[PeriodModel, datetime, datetime], dict[str, timedelta]] = {}

    @property
    def first_seen(self) -> dict[str, datetime]:
        if self._first_seen is None:
            self._first_seen = dict(
                TierStatus._default_manager.filter(scope__in=self._expected_scopes)
                .values("tier")
                .annotate(first=Min("first_seen"))
                .values_list("tier", "first")
            )
        return self._first_seen

    # -- incidents ----------------------------------------------------------------------

    def incidents_in(self, start: datetime, end: datetime, limit: int | None = None) -> list[Period]:
        """Incidents overlapping [start, end), newest first."""
        rows = (
            Incident._default_manager.filter(_overlapping(start, end, self.scopes))
            .order_by("-started", "-pk")
            .values_list("tier", "started", "ended", "state", "cause", "detail", "role")
        )
        if limit is not None:
            rows = rows[:limit]
        return [Period(t, "incident", s, e, st, c, d, r) for t, s, e, st, c, d, r in rows]

    def incident_count(self, start: datetime, end: datetime) -> int:
        return Incident._default_manager.filter(_overlapping(start, end, self.scopes)).count()

    def downtime(self, start: datetime, end: datetime, tier: str | None = None) -> timedelta:
        """Incident time inside [start, end): of one tier, or summed over the tiers."""
        per_tier = self._times(Incident, start, end)
        return per_tier.get(tier, ZERO) if tier is not None else sum(per_tier.values(), ZERO)

    def absent(self, start: datetime, end: datetime, tier: str) -> timedelta:
        return self._times(Absence, start, end).get(tier, ZERO)

    @property
    def _expected_scopes(self) -> tuple[str, ...]:
        # What the bot was expected to do: console runs come and go (and are "offline" between
        # them), so with both shown only the bot's own absences and first state count.
        return (Scope.BOT.value,) if Scope.BOT.value in self.scopes else self.scopes

    def _times(self, model: PeriodModel, start: datetime, end: datetime) -> dict[str, timedelta]:
        """tier -> time its periods cover inside [start, end); computed once per range."""
        key = (model, start, end)
        if key not in self._cache:
            self._cache[key] = self._compute(model, start, end) if start < end else {}
        return self._cache[key]

    def _compute(self, model: PeriodModel, start: datetime, end: datetime) -> dict[str, timedelta]:
        manager = model._default_manager
        scopes = self._expected_scopes if model is Absence else self.scopes
        if len(scopes) > 1:
            rows = manager.filter(_overlapping(start, end, scopes)).order_by()
            spans: dict[str, list[tuple[datetime, datetime | None]]] = {}
            for tier, begun, ended in rows.values_list("tier", "started", "ended"):
                spans.setdefault(tier, []).append((begun, ended))
            return {tier: union(found, start, end, self.now) for tier, found in spans.items()}
        mine = manager.filter(scope__in=scopes)
        totals: dict[str, timedelta] = {}
        inside = (
            mine.filter(started__gte=start, ended__lte=end)
            .order_by()
            .values("tier")
            .annotate(s=Sum("seconds"))
            .values_list("tier", "s")
        )
        for tier, seconds in inside:
            totals[tier] = timedelta(seconds=seconds or 0.0)
        # The few that cross an end, each found through an index: one that began before the
        # range and ended inside or after it, one still going on, one that ends after it.
        crossing = (
            mine.filter(started__lt=start, ended__gt=start),
            mine.filter(ended__isnull=True, started__lt=end),
            mine.filter(started__gte=start, started__lt=end, ended__gt=end),
        )
        seen: set[int] = set()
        for query in crossing:
            for pk, tier, begun, ended in query.order_by().values_list("pk", "tier", "started", "ended"):
                if pk in seen:
                    continue
                seen.add(pk)
                lo, hi = max(begun, start), min(ended or self.now, end)
                totals[tier] = totals.get(tier, ZERO) + max(hi - lo, ZERO)
        return totals

    # -- uptime and months -------------------------------------------------------------

    def uptime(self, tier: str, start: datetime, end: datetime) -> Uptime:
        first = self.first_seen.get(tier)
        end = min(end, self.now)
        if first is None or first >= end:
            return Uptime(None, ZERO, ZERO)
        start = max(start, first)
        expected = (end - start) - self.absent(start, end, tier)
        if expected <= ZERO:
            return Uptime(None, ZERO, ZERO)
        down = min(self.downtime(start, end, tier), expected)
        return Uptime(100.0 * (1 - down / expected), expected, down)

    def months(self, count: int = 3) -> list[MonthSummary]:
        """This month and the ones before, newest first; an incident counts in every month it touches."""
        summaries = []
        month_end = self.now
        for month_start in month_starts(self.now, count):
            summaries.append(
                MonthSummary(
                    month_start,
                    self.incident_count(month_start, month_end),
                    self.downtime(month_start, month_end),
                )
            )
            month_end = month_start
        return summaries


def union(
    spans: Iterable[tuple[datetime, datetime | None]], start: datetime, end: datetime, now: datetime
) -> timedelta:
    """The time inside [start, end) that at least one of the spans covers (None: still going on)."""
    clipped = sorted((max(lo, start), min(hi or now, end)) for lo, hi in spans)
    total, reach = ZERO, start
    for lo, hi in clipped:
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
