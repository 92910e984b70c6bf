"""Chart buckets: at most 100 per window, on local minutes, hours, days or Monday weeks, end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from llm.dashboard.buckets import MAX_BUCKETS, Buckets
from llm.history import local_time
from tests.zones import KATHMANDU, PARIS, paris, utc

__all__ = ["paris"]  # the fixture, used by name

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def aligned(moment: datetime, zone: ZoneInfo, unit: str, step: int) -> bool:
    local = moment.astimezone(zone)
    if local.second or local.microsecond:
        return False
    if unit == "minute":
        return local.minute % step == 0
    if unit == "hour":
        return local.minute == 0 and local.hour % step == 0
    midnight = (local.hour, local.minute) == (0, 0)
    return midnight and (unit == "day" or local.weekday() == 0)


def assert_tiles(buckets: Buckets) -> None:
    """The edges cover the window end to end: increasing, first at or before start, last at or after end."""
    edges = buckets.edges
    assert all(a < b for a, b in pairwise(edges))
    assert edges[0] <= buckets.start < edges[1]
    assert edges[-2] < buckets.end <= edges[-1]
    assert all(edge.tzinfo is UTC for edge in edges)


@pytest.mark.parametrize("zone", [PARIS, KATHMANDU, ZoneInfo("UTC")])
@pytest.mark.parametrize(
    ("span", "unit", "step"),
    [
        (HOUR, "minute", 1),
        (DAY, "minute", 15),
        (7 * DAY, "hour", 2),
        (30 * DAY, "day", 1),
        (90 * DAY, "day", 1),
        (365 * DAY, "week", 1),
    ],
)
def test_each_preset_window_gets_at_most_100_aligned_buckets(
    zone: ZoneInfo, span: timedelta, unit: str, step: int
) -> None:
    # An end that is on nothing: the window starts and ends mid-bucket. With Paris, every
    # window but the hour holds the fall-back night of 2026-10-25, the year both changes.
    end = datetime(2026, 11, 5, 10, 37, 23, tzinfo=zone)
    with timezone.override(zone):
        buckets = Buckets.for_window(end - span, end)

    assert (buckets.unit, buckets.step) == (unit, step)
    assert 0 < len(buckets) <= MAX_BUCKETS
    assert_tiles(buckets)
    assert all(aligned(edge, zone, unit, step) for edge in buckets.edges), [
        edge.astimezone(zone) for edge in buckets.edges if not aligned(edge, zone, unit, step)
    ]


@pytest.mark.usefixtures("paris")
@pytest.mark.parametrize(
    ("start", "end", "day", "length"),
    [
        (datetime(2026, 10, 20, 9, tzinfo=PARIS), datetime(2026, 10, 29, 9, tzinfo=PARIS), 25, 25 * HOUR),
        (datetime(2026, 10, 1, 9, tzinfo=PARIS), datetime(2026, 11, 29, 9, tzinfo=PARIS), 25, 25 * HOUR),
        (datetime(2026, 3, 24, 9, tzinfo=PARIS), datetime(2026, 4, 2, 9, tzinfo=PARIS), 29, 23 * HOUR),
        (datetime(2026, 3, 1, 9, tzinfo=PARIS), datetime(2026, 4, 29, 9, tzinfo=PARIS), 29, 23 * HOUR),
    ],
)
def test_day_buckets_hold_25_hours_on_the_fall_back_day_and_23_on_the_spring_one(
    start: datetime, end: datetime, day: int, length: timedelta
) -> None:
    buckets = Buckets.for_window(start, end)

    assert buckets.unit == "day"
    assert_tiles(buckets)
    lengths = {a.astimezone(PARIS).date(): b - a for a, b in pairwise(buckets.edges) if b - a != DAY}
    [(date, hours)] = lengths.items()
    assert (date.day, hours) == (day, length)


@pytest.mark.usefixtures("paris")
def test_a_week_over_the_fall_back_night_keeps_days_whole() -> None:
    buckets = Buckets.for_window(
        datetime(2026, 10, 21, 9, 10, tzinfo=PARIS), datetime(2026, 10, 28, 9, 10, tzinfo=PARIS)
    )

    assert (buckets.unit, buckets.step) == ("hour", 2)
    assert_tiles(buckets)
    # Both local midnights around the 25-hour day are edges, and the buckets between them add up to it.
    day = local_time.day_start(utc(2026, 10, 25, 12))
    following = local_time.next_day(day)
    assert day in buckets.edges and following in buckets.edges
    inside = [(a, b) for a, b in pairwise(buckets.edges) if day <= a < following]
    assert sum((b - a for a, b in inside), timedelta()) == 25 * HOUR
    # The repeated 02:00 is a bucket of its own: 00-02 (CEST), 02-02 (CEST to CET), then 02-04 CET.
    assert [a.astimezone(PARIS).strftime("%H%z") for a, _b in inside[:4]] == [
        "00+0200",
        "02+0200",
        "02+0100",
        "04+0100",
    ]


@pytest.mark.usefixtures("paris")
def test_two_hour_buckets_stay_on_even_hours_after_the_spring_change() -> None:
    buckets = Buckets.for_window(
        datetime(2026, 3, 27, 9, 10, tzinfo=PARIS), datetime(2026, 4, 3, 9, 10, tzinfo=PARIS)
    )

    assert (buckets.unit, buckets.step) == ("hour", 2)
    assert_tiles(buckets)
    assert all(edge.astimezone(PARIS).hour % 2 == 0 for edge in buckets.edges)
    # The bucket of the skipped hour: 00:00 CET to 04:00 CEST holds three hours.
    night = utc(2026, 3, 28, 23)
    assert buckets.edges[buckets.edges.index(night) + 1] - night == 3 * HOUR


@pytest.mark.usefixtures("paris")
def test_minute_buckets_over_the_fall_back_night_have_no_gap_or_overlap() -> None:
    buckets = Buckets.for_window(utc(2026, 10, 24, 12, 7), utc(2026, 10, 25, 12, 7))

    assert (buckets.unit, buckets.step) == ("minute", 15)
    assert_tiles(buckets)
    assert all(b - a == timedelta(minutes=15) for a, b in pairwise(buckets.edges))
    assert all(aligned(edge, PARIS, "minute", 15) for edge in buckets.edges)


def test_quarter_hours_in_kathmandu_start_on_local_quarters() -> None:
    with timezone.override(KATHMANDU):
        buckets = Buckets.for_window(utc(2026, 6, 1, 10, 7), utc(2026, 6, 2, 10, 7))

    assert buckets.edges[0] == utc(2026, 6, 1, 10, 0)  # 15:45 local
    assert {edge.astimezone(KATHMANDU).minute for edge in buckets.edges} == {0, 15, 30, 45}


@pytest.mark.usefixtures("paris")
def test_weeks_start_on_monday_and_clock_change_weeks_differ_by_an_hour() -> None:
    end = datetime(2026, 12, 20, 18, tzinfo=PARIS)
    buckets = Buckets.for_window(end - 365 * DAY, end)

    assert buckets.unit == "week"
    assert_tiles(buckets)
    lengths = sorted({b - a for a, b in pairwise(buckets.edges)})
    assert lengths == [7 * DAY - HOUR, 7 * DAY, 7 * DAY + HOUR]


@pytest.mark.usefixtures("paris")
def test_index_of_finds_the_bucket_and_clamps_outside_the_edges() -> None:
    buckets = Buckets.for_window(
        datetime(2026, 10, 1, 9, tzinfo=PARIS), datetime(2026, 11, 29, 9, tzinfo=PARIS)
    )
    edges = buckets.edges

    for number in buckets.numbers():
        assert buckets.start_of(number) == edges[number]
        assert buckets.index_of(edges[number]) == number
        assert buckets.index_of(edges[number + 1] - timedelta(microseconds=1)) == number
    assert buckets.index_of(edges[0] - DAY) == 0
    assert buckets.index_of(edges[-1]) == len(buckets) - 1
    assert buckets.index_of(edges[-1] + DAY) == len(buckets) - 1
    # 00:30 local on the 25th (22:30 UTC on the 24th) is in the 25th's bucket.
    assert buckets.start_of(buckets.index_of(utc(2026, 10, 24, 22, 30))) == utc(2026, 10, 24, 22)


def test_labels_name_the_bucket_size() -> None:
    start = utc(2026, 6, 1)

    assert Buckets.for_window(start, start + HOUR).label == "1 minute"
    assert Buckets.for_window(start, start + DAY).label == "15 minutes"
    assert Buckets.for_window(start, start + 7 * DAY).label == "2 hours"
    assert Buckets.for_window(start, start + 90 * DAY).label == "1 day"
    assert Buckets.for_window(start, start + 365 * DAY).label == "1 week (from Monday)"


@pytest.mark.usefixtures("paris")
@pytest.mark.parametrize(
    "start",
    [
        utc(2026, 3, 29, 1, 30),  # 03:30 CEST, just after the skipped hour
        utc(2026, 10, 25, 1, 30),  # 02:30 CET, the second 02:00
        utc(2026, 10, 25, 2, 30),  # 03:30 CET
    ],
)
@pytest.mark.parametrize(("hours", "step"), [(30, 1), (150, 2), (192, 2)])
def test_windows_starting_on_a_clock_change_night_stay_on_the_grid(
    start: datetime, hours: int, step: int
) -> None:
    buckets = Buckets.for_window(start, start + hours * HOUR)

    assert (buckets.unit, buckets.step) == ("hour", step)
    assert_tiles(buckets)
    assert all(aligned(edge, PARIS, "hour", step) for edge in buckets.edges), buckets.edges[:3]
    # Local midnight is on every grid: the first edge is never before it.
    assert local_time.day_start(start) <= buckets.edges[0] <= start
