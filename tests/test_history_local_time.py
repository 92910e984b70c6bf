"""Local hours, days and weeks across daylight-saving changes and in a zone with a :45 offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from llm.history import local_time
from tests.zones import KATHMANDU, PARIS, paris, utc

__all__ = ["paris"]  # the fixture, used by name

HOUR = timedelta(hours=1)


def hours_of_day(start: datetime) -> list[datetime]:
    hours = [start]
    end = local_time.next_day(start)
    while (following := local_time.next_hour(hours[-1])) < end:
        hours.append(following)
    return hours


@pytest.mark.usefixtures("paris")
def test_the_spring_forward_day_is_23_hours() -> None:
    start = local_time.day_start(datetime(2026, 3, 29, 12, tzinfo=PARIS))

    assert start == utc(2026, 3, 28, 23)  # midnight CET
    assert local_time.next_day(start) == utc(2026, 3, 29, 22)  # midnight CEST
    hours = hours_of_day(start)
    assert len(hours) == 23
    assert [h.astimezone(PARIS).hour for h in hours] == [0, 1, *range(3, 24)]
    assert all(b - a == HOUR for a, b in pairwise(hours))


@pytest.mark.usefixtures("paris")
def test_the_fall_back_day_is_25_hours_with_02_00_twice() -> None:
    start = local_time.day_start(datetime(2026, 10, 25, 12, tzinfo=PARIS))

    assert start == utc(2026, 10, 24, 22)  # midnight CEST
    assert local_time.next_day(start) == utc(2026, 10, 25, 23)  # midnight CET
    hours = hours_of_day(start)
    assert len(hours) == 25 == len(set(hours))
    assert [h.astimezone(PARIS).hour for h in hours] == [0, 1, 2, *range(2, 24)]


@pytest.mark.usefixtures("paris")
def test_the_repeated_hour_has_two_distinct_starts() -> None:
    # 02:30 local happens twice on 2026-10-25: at 00:30 UTC (CEST) and at 01:30 UTC (CET).
    first = local_time.hour_start(utc(2026, 10, 25, 0, 30))
    second = local_time.hour_start(utc(2026, 10, 25, 1, 30))

    assert (first, second) == (utc(2026, 10, 25, 0), utc(2026, 10, 25, 1))
    assert first.astimezone(PARIS).hour == second.astimezone(PARIS).hour == 2
    assert local_time.next_hour(first) == second
    assert local_time.next_hour(second) == utc(2026, 10, 25, 2)  # 03:00 CET
    # Both belong to the same 25-hour local day.
    assert local_time.day_start(first) == local_time.day_start(second) == utc(2026, 10, 24, 22)


@pytest.mark.usefixtures("paris")
def test_the_skipped_hour_leads_from_01_00_to_03_00() -> None:
    one = local_time.hour_start(utc(2026, 3, 29, 0, 59))

    assert one == utc(2026, 3, 29, 0)
    assert local_time.next_hour(one) == utc(2026, 3, 29, 1) == local_time.hour_start(utc(2026, 3, 29, 1, 1))
    assert local_time.next_hour(one).astimezone(PARIS).hour == 3


@pytest.mark.usefixtures("paris")
@pytest.mark.parametrize(
    ("moment", "monday"),
    [
        # Sunday 23:59 local is still the week that began six days before.
        (datetime(2026, 10, 25, 23, 59, tzinfo=PARIS), utc(2026, 10, 18, 22)),
        (datetime(2026, 10, 26, 0, 0, tzinfo=PARIS), utc(2026, 10, 25, 23)),
        # 23:30 UTC on a Sunday is already Monday in Paris.
        (utc(2026, 10, 25, 23, 30), utc(2026, 10, 25, 23)),
        (datetime(2026, 3, 29, 12, tzinfo=PARIS), utc(2026, 3, 22, 23)),
        (datetime(2026, 3, 30, 0, 0, tzinfo=PARIS), utc(2026, 3, 29, 22)),
    ],
)
def test_weeks_start_on_monday_local_midnight(moment: datetime, monday: datetime) -> None:
    start = local_time.week_start(moment)

    assert start == monday
    local = start.astimezone(PARIS)
    assert (local.weekday(), local.hour, local.minute) == (0, 0, 0)
    assert start <= moment < local_time.next_week(start)


@pytest.mark.usefixtures("paris")
def test_weeks_holding_a_clock_change_are_an_hour_short_or_long() -> None:
    spring = local_time.week_start(utc(2026, 3, 29, 12))
    fall = local_time.week_start(utc(2026, 10, 25, 12))

    assert local_time.next_week(spring) - spring == timedelta(days=7) - HOUR
    assert local_time.next_week(fall) - fall == timedelta(days=7) + HOUR


@pytest.mark.usefixtures("paris")
def test_ceilings_leave_a_start_where_it_is() -> None:
    day = utc(2026, 10, 24, 22)

    assert local_time.ceil_day(day) == day
    assert local_time.ceil_day(day + timedelta(seconds=1)) == utc(2026, 10, 25, 23)
    assert local_time.ceil_hour(utc(2026, 10, 25, 0)) == utc(2026, 10, 25, 0)
    assert local_time.ceil_hour(utc(2026, 10, 25, 0, 0, 1)) == utc(2026, 10, 25, 1)


def test_hours_in_kathmandu_start_at_a_quarter_past_in_utc() -> None:
    with timezone.override(KATHMANDU):  # UTC+05:45
        start = local_time.hour_start(utc(2026, 6, 1, 10, 0))
        day = local_time.day_start(utc(2026, 6, 1, 10, 0))
        following = local_time.next_hour(start)

    assert start == utc(2026, 6, 1, 9, 15)  # 15:00 local
    assert start.astimezone(KATHMANDU).hour == 15
    assert following == utc(2026, 6, 1, 10, 15)
    assert day == utc(2026, 5, 31, 18, 15)  # local midnight


def test_hour_starts_are_utc_instants_whatever_the_zone() -> None:
    with timezone.override(KATHMANDU):
        start = local_time.hour_start(datetime(2026, 6, 1, 15, 40, tzinfo=KATHMANDU))

    assert start.tzinfo is UTC
    assert start == utc(2026, 6, 1, 9, 15)


@pytest.mark.parametrize("zone", [PARIS, KATHMANDU])
def test_the_cache_gives_what_the_functions_give(zone: ZoneInfo) -> None:
    # Every minute of both Paris clock-change days (and the same span in Kathmandu).
    with timezone.override(zone):
        starts = local_time.Starts()
        for day in (utc(2026, 3, 28, 20), utc(2026, 10, 24, 20)):
            for minute in range(0, 30 * 60, 7):
                moment = day + timedelta(minutes=minute, seconds=minute % 60)
                assert starts.of(moment) == (local_time.hour_start(moment), local_time.day_start(moment))


def test_a_zone_moving_its_clocks_by_half_an_hour_still_moves_on() -> None:
    # Australia/Lord_Howe: 02:00 (+11) becomes 01:30 (+10:30) on 2026-04-05; the hour that
    # began at 01:00 lasts 90 minutes, and the next one must still come.
    zone = ZoneInfo("Australia/Lord_Howe")
    with timezone.override(zone):
        start = local_time.hour_start(datetime(2026, 4, 4, 13, 30, tzinfo=UTC))
        hours = [start]
        for _ in range(4):
            hours.append(local_time.next_hour(hours[-1]))
    assert all(b > a for a, b in pairwise(hours))
    assert [h.astimezone(zone).strftime("%H:%M%z") for h in hours] == [
        "00:00+1100",
        "01:00+1100",
        "02:00+1030",
        "03:00+1030",
        "04:00+1030",
    ]
