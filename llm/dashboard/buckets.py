"""Chart buckets over a window, aligned on local minutes, hours, days and Monday weeks.

A bucket is whatever lies between two edges: with TIME_ZONE=Europe/Paris a "1 day"
bucket holds 23 or 25 hours on the days the clocks change, never a gap or an overlap.
Windows longer than a day get buckets of whole local hours (up to 8 days) or whole
days and weeks, so they can be filled from the hourly and daily roll-ups
(llm.dashboard.series).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from llm.history import local_time

MAX_BUCKETS = 100
DAY = timedelta(days=1)
# (unit, how many): sub-hour steps only for windows of a day or less.
MINUTE_STEPS = (1, 2, 5, 10, 15, 30)
HOUR_STEPS = (1, 2, 3, 6, 12)
# Past a week, buckets are whole local days: they come from the daily roll-ups (30 rows per
# series for 30 days) rather than from 720 hourly ones.
HOURLY_UP_TO = timedelta(days=8)
UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": DAY}


@dataclass(frozen=True, slots=True)
class Buckets:
    start: datetime  # the window asked for; the first bucket may begin before it
    end: datetime
    edges: tuple[datetime, ...]  # len(buckets) + 1 instants, in UTC, the last at or after `end`
    unit: str  # "minute", "hour", "day" or "week"
    step: int  # that many units per bucket

    @classmethod
    def for_window(cls, start: datetime, end: datetime) -> Buckets:
        """The finest local grid that covers the window in at most MAX_BUCKETS buckets."""
        span = end - start
        candidates = [("minute", step) for step in MINUTE_STEPS if span <= DAY]
        candidates += [("hour", step) for step in HOUR_STEPS if span <= HOURLY_UP_TO]
        for unit, step in [*candidates, ("day", 1)]:
            # A window that starts mid-step spills into one more bucket than span / step says.
            if span / (UNITS[unit] * step) <= MAX_BUCKETS - 1:
                edges = _grid(start, end, unit, step)
                if len(edges) - 1 <= MAX_BUCKETS:
                    return cls(start, end, edges, unit, step)
        return cls(start, end, _edges(start, end, local_time.week_start, local_time.next_week), "week", 1)

    def __len__(self) -> int:
        return len(self.edges) - 1

    def numbers(self) -> range:
        return range(len(self))

    def start_of(self, number: int) -> datetime:
        return self.edges[number]

    def index_of(self, moment: datetime) -> int:
        """The bucket holding `moment` (clamped to the first and last)."""
        found = bisect.bisect_right(self.edges, moment) - 1
        return min(max(found, 0), len(self) - 1)

    @property
    def sub_hour(self) -> bool:
        return self.unit == "minute"

    @property
    def label(self) -> str:
        if self.unit == "minute":
            return ngettext("%(n)d minute", "%(n)d minutes", self.step) % {"n": self.step}
        if self.unit == "hour":
            return ngettext("%(n)d hour", "%(n)d hours", self.step) % {"n": self.step}
        return _("1 day") if self.unit == "day" else _("1 week (from Monday)")


def _grid(start: datetime, end: datetime, unit: str, step: int) -> tuple[datetime, ...]:
    if unit == "minute":
        return _minute_edges(start, end, step)
    if unit == "hour":
        return _edges(start, end, _hour_floor(step), _hour_advance(step))
    return _edges(start, end, local_time.day_start, local_time.next_day)


def _minute_edges(start: datetime, end: datetime, step: int) -> tuple[datetime, ...]:
    # Local minutes: shifted by the zone's offset so that 15-minute buckets start at :00, :15...
    # in every zone, :45 offsets included. A daylight-saving change moves the offset by whole
    # hours, which keeps every step that divides an hour aligned.
    seconds = step * 60
    offset = _offset(start)
    first = (int(start.timestamp()) + offset) // seconds * seconds - offset
    edges = []
    moment = first
    last = end.timestamp()
    while True:
        edges.append(datetime.fromtimestamp(moment, tz=UTC))
        if moment >= last:
            break
        moment += seconds
    return tuple(edges)


def _offset(moment: datetime) -> int:
    delta = moment.astimezone(local_time.zone()).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def _hour_floor(step: int) -> Callable[[datetime], datetime]:
    def floor(moment: datetime) -> datetime:
        # Back one local hour at a time: `hour % step` hours earlier is off the grid on a
        # clock-change night (03:30 after the skipped hour is 2 hours past midnight, not 3).
        start = local_time.hour_start(moment)
        while start.astimezone(local_time.zone()).hour % step:
            start = local_time.hour_start(start - timedelta(minutes=1))
        return start

    return floor


def _hour_advance(step: int) -> Callable[[datetime], datetime]:
    # To the next local hour that is a multiple of `step`, not `step` hours later: across a
    # clock change the latter would shift every later edge off the local grid (12-hour
    # buckets from 23:00 to 11:00, no edge at midnight). That bucket holds one hour more or less.
    def advance(moment: datetime) -> datetime:
        moment = local_time.next_hour(moment)
        while moment.astimezone(local_time.zone()).hour % step:
            moment = local_time.next_hour(moment)
        return moment

    return advance


def _edges(
    start: datetime,
    end: datetime,
    floor: Callable[[datetime], datetime],
    advance: Callable[[datetime], datetime],
) -> tuple[datetime, ...]:
    edges = [floor(start)]
    while edges[-1] < end:
        edges.append(advance(edges[-1]))
    return tuple(edges)
