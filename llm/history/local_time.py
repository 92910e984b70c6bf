"""Local hours, days and weeks (TIME_ZONE): where roll-ups and chart buckets begin.

Every function returns aware datetimes in UTC: arithmetic on two datetimes of one
zoneinfo zone ignores a daylight-saving change between them (it is wall-clock
arithmetic), so a 25-hour day would be counted as 24.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo

from django.utils import timezone

HOUR = timedelta(hours=1)


def zone() -> tzinfo:
    return timezone.get_current_timezone()


def hour_start(moment: datetime) -> datetime:
    """The first instant of the local hour holding `moment` (the fold keeps a repeated hour apart)."""
    local = moment.astimezone(zone())
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def day_start(moment: datetime) -> datetime:
    local = moment.astimezone(zone())
    return midnight(local.date().toordinal())


def midnight(ordinal: int) -> datetime:
    """Local midnight of the day with this proleptic ordinal, in UTC."""
    day = datetime.fromordinal(ordinal).date()
    return datetime.combine(day, time(), tzinfo=zone()).astimezone(UTC)


def week_start(moment: datetime) -> datetime:
    """Monday's local midnight of the week holding `moment`."""
    local = moment.astimezone(zone())
    return midnight(local.date().toordinal() - local.weekday())


def next_hour(start: datetime) -> datetime:
    """The next local hour's first instant: an hour later in UTC, or sooner where a zone
    moves its clocks by half an hour (Australia/Lord_Howe); never `start` itself."""
    moment = start + HOUR
    found = hour_start(moment)
    while found <= start:  # the local hour that began at `start` lasts more than 60 minutes
        moment += timedelta(minutes=15)
        found = hour_start(moment)
    return found


def next_day(start: datetime) -> datetime:
    return midnight(start.astimezone(zone()).date().toordinal() + 1)


def next_week(start: datetime) -> datetime:
    return midnight(start.astimezone(zone()).date().toordinal() + 7)


def ceil_hour(moment: datetime) -> datetime:
    start = hour_start(moment)
    return start if start == moment else next_hour(start)


def ceil_day(moment: datetime) -> datetime:
    start = day_start(moment)
    return start if start == moment else next_day(start)


class Starts:
    """hour_start and day_start, remembered per quarter hour of UTC: the writer and the
    roll-up rebuild ask for millions of rows, and every zone's offset is whole quarters."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[datetime, datetime]] = {}
        self._zone = zone()

    def of(self, moment: datetime) -> tuple[datetime, datetime]:
        key = int(moment.timestamp()) // 900
        found = self._known.get(key)
        if found is None:
            if len(self._known) > 50_000:
                self._known.clear()
            found = self._known[key] = (hour_start(moment), day_start(moment))
        return found
