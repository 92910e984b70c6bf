"""Uptime, incidents and downtime over windows, from the incident and absence rows the writer keeps."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from llm.dashboard.availability import Availability, month_starts, union
from llm.history import local_time
from tests.dashboard_history import HOUR, event

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
T = datetime(2026, 6, 10, 12, tzinfo=UTC)
ZERO = timedelta(0)
BOT, BOTH = ("bot",), ("bot", "console")


@pytest.fixture
def paris() -> Iterator[None]:
    with timezone.override(PARIS):
        yield


def percent(down: float, expected: float) -> Any:
    return pytest.approx(100 * (1 - down / expected), abs=1e-9)


def test_an_incident_spanning_the_window_start_counts_only_inside_it() -> None:
    event(T - 60 * HOUR, "local", "up")
    event(T - 26 * HOUR, "local", "down", "ReadTimeout")
    event(T - 23 * HOUR, "local", "up")
    known = Availability(BOT, T)
    start = T - 24 * HOUR

    [incident] = known.incidents_in(start, T)

    assert (incident.tier, incident.start, incident.end, incident.error) == (
        "local",
        T - 26 * HOUR,
        T - 23 * HOUR,
        "ReadTimeout",
    )
    assert (incident.duration(T), incident.overlap(start, T, T)) == (3 * HOUR, HOUR)
    assert known.incident_count(start, T) == 1
    assert known.downtime(start, T, "local") == known.downtime(start, T) == HOUR
    uptime = known.uptime("local", start, T)
    assert (uptime.expected, uptime.downtime) == (24 * HOUR, HOUR)
    assert uptime.percent == percent(1, 24)
    # Over 7 days: expected only since the tier was first seen, 60 hours ago.
    week = known.uptime("local", T - 7 * 24 * HOUR, T)
    assert (week.expected, week.downtime, week.percent) == (60 * HOUR, 3 * HOUR, percent(3, 60))


def test_an_ongoing_incident_lasts_until_now() -> None:
    event(T - 30 * HOUR, "openai", "up")
    event(T - 2 * HOUR, "openai", "down", "AuthenticationError")

    for now, down in ((T, 2 * HOUR), (T + HOUR, 3 * HOUR)):
        known = Availability(BOT, now)
        [incident] = known.incidents_in(now - 24 * HOUR, now)
        assert incident.ongoing and incident.duration(now) == down
        assert known.downtime(now - 24 * HOUR, now, "openai") == down
        assert known.uptime("openai", now - 24 * HOUR, now).percent == percent(down / HOUR, 24)


def test_a_window_ending_after_now_is_counted_until_now() -> None:
    event(T - 10 * HOUR, "openai", "up")
    event(T - 2 * HOUR, "openai", "down", "HTTP500")

    uptime = Availability(BOT, T).uptime("openai", T - 10 * HOUR, T + 10 * HOUR)

    assert (uptime.expected, uptime.downtime) == (10 * HOUR, 2 * HOUR)


def test_only_expected_time_counts() -> None:
    event(T - 10 * HOUR, "local", "up")
    event(T - 8 * HOUR, "local", "paused")
    event(T - 7 * HOUR, "local", "up")
    event(T - 6 * HOUR, "local", "disabled")
    event(T - 4 * HOUR, "local", "up")
    event(T - 2 * HOUR, "local", "down", "ConnectError")
    event(T - HOUR, "local", "up")
    known = Availability(BOT, T)

    uptime = known.uptime("local", T - 24 * HOUR, T)

    # 10 hours since first seen, less 1 paused and 2 disabled; 1 hour down of those 7.
    assert known.absent(T - 24 * HOUR, T, "local") == 3 * HOUR
    assert (uptime.expected, uptime.downtime, uptime.percent) == (7 * HOUR, HOUR, percent(1, 7))


def test_a_tier_never_detected_is_not_expected_until_it_answers() -> None:
    event(T - 5 * HOUR, "local", "down", "ConnectError")  # at boot: nothing there

    before = Availability(BOT, T - 4 * HOUR).uptime("local", T - 28 * HOUR, T - 4 * HOUR)
    event(T - 3 * HOUR, "local", "up")
    after = Availability(BOT, T).uptime("local", T - 24 * HOUR, T)

    assert (before.percent, before.expected) == (None, ZERO)
    assert (after.percent, after.expected, after.downtime) == (100.0, 3 * HOUR, ZERO)
    assert Availability(BOT, T).incident_count(T - 24 * HOUR, T) == 0


def test_over_budget_is_not_downtime() -> None:
    event(T - 20 * HOUR, "openai", "up")
    event(T - 10 * HOUR, "openai", "budget")
    event(T - 2 * HOUR, "openai", "up")
    known = Availability(BOT, T)

    uptime = known.uptime("openai", T - 24 * HOUR, T)

    assert (uptime.percent, uptime.expected) == (100.0, 12 * HOUR)
    assert known.incident_count(T - 24 * HOUR, T) == 0


def test_a_tier_with_no_state_yet_has_no_uptime() -> None:
    event(T - 5 * HOUR, "openai", "up")
    known = Availability(BOT, T)

    assert known.uptime("local", T - 24 * HOUR, T).percent is None
    # A window that ends before the tier's first state.
    assert known.uptime("openai", T - 24 * HOUR, T - 6 * HOUR).percent is None


def test_overlapping_incidents_of_the_console_count_once() -> None:
    event(T - 20 * HOUR, "local", "up")
    event(T - 10 * HOUR, "local", "down", "ConnectError")
    event(T - 8 * HOUR, "local", "up")
    event(T - 20 * HOUR, "local", "up", role="console")
    event(T - 9 * HOUR, "local", "down", "ReadTimeout", role="console")
    event(T - 7 * HOUR, "local", "up", role="console")
    start = T - 24 * HOUR

    bot, both = Availability(BOT, T), Availability(BOTH, T)

    assert (bot.incident_count(start, T), both.incident_count(start, T)) == (1, 2)
    assert [(p.start, p.role) for p in both.incidents_in(start, T)] == [
        (T - 9 * HOUR, "console"),
        (T - 10 * HOUR, ""),
    ]
    assert bot.downtime(start, T, "local") == 2 * HOUR
    # 10 h to 8 h ago and 9 h to 7 h ago: three hours, not four.
    assert both.downtime(start, T, "local") == both.downtime(start, T) == 3 * HOUR
    uptime = both.uptime("local", start, T)
    assert (uptime.expected, uptime.percent) == (20 * HOUR, percent(3, 20))
    # The same union inside a window that cuts both.
    assert both.downtime(T - 9.5 * HOUR, T - 7.5 * HOUR, "local") == 2 * HOUR


def test_tiers_down_at_once_add_their_downtime() -> None:
    for tier in ("local", "openai"):
        event(T - 10 * HOUR, tier, "up")
        event(T - 4 * HOUR, tier, "down", "ConnectError")
        event(T - 2 * HOUR, tier, "up")
    known = Availability(BOT, T)

    assert known.downtime(T - 24 * HOUR, T, "local") == known.downtime(T - 24 * HOUR, T, "openai") == 2 * HOUR
    assert known.downtime(T - 24 * HOUR, T) == 4 * HOUR


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_downtime_of_any_window_is_the_time_its_incidents_cover_inside_it(seed: int) -> None:
    """Windows cutting incidents at either end, holding them whole, or ending where they begin."""
    rng = random.Random(seed)
    moment = T - 200 * HOUR
    event(moment, "local", "up")
    spans: list[tuple[datetime, datetime | None]] = []
    while moment < T - 20 * HOUR:  # the last "up" well before the ongoing incident
        moment += timedelta(minutes=rng.randint(10, 600))
        down_at = moment
        event(down_at, "local", "down", "ConnectError")
        if rng.random() < 0.3:
            moment += timedelta(minutes=rng.randint(5, 120))
            event(moment, "local", "cooling", "ConnectError")
        moment += timedelta(minutes=rng.randint(5, 300))
        event(moment, "local", "up")
        spans.append((down_at, moment))
    assert moment < T - 3 * HOUR
    event(T - 3 * HOUR, "local", "down", "HTTP503")
    spans.append((T - 3 * HOUR, None))
    known = Availability(BOT, T)
    instants = [s for span in spans for s in span if s is not None]

    for _ in range(60):
        start = rng.choice([*instants, T - rng.uniform(0, 220) * HOUR])
        end = rng.choice([*instants, T, T - rng.uniform(0, 220) * HOUR])
        if start >= end:
            continue
        covered = sum((max(min(hi or T, end) - max(lo, start), ZERO) for lo, hi in spans), ZERO)
        touching = sum(1 for lo, hi in spans if lo < end and (hi is None or hi > start))
        assert known.downtime(start, end, "local") == covered, (start, end)
        assert known.incident_count(start, end) == len(known.incidents_in(start, end)) == touching


# -- months in local time ------------------------------------------------------------


def paris_time(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=PARIS)


@pytest.mark.usefixtures("paris")
def test_month_starts_are_local_midnights_of_the_first() -> None:
    starts = month_starts(paris_time(2026, 11, 10, 12), 3)

    assert starts == [
        datetime(2026, 10, 31, 23, tzinfo=UTC),  # 1 November, CET
        datetime(2026, 9, 30, 22, tzinfo=UTC),  # 1 October, CEST
        datetime(2026, 8, 31, 22, tzinfo=UTC),
    ]
    assert month_starts(paris_time(2026, 1, 5), 2)[1] == datetime(2025, 11, 30, 23, tzinfo=UTC)


@pytest.mark.usefixtures("paris")
def test_months_split_incidents_on_local_month_starts_and_count_the_25_hour_day() -> None:
    event(paris_time(2026, 8, 1), "local", "up")
    # 1 hour in September, 1 in October: the month turns at local midnight, 22:00 UTC.
    event(paris_time(2026, 9, 30, 23), "local", "down", "ConnectError")
    event(paris_time(2026, 10, 1, 1), "local", "up")
    # From 22:00 on the 24th to 22:00 on the 25th: the clocks went back, 25 hours.
    event(paris_time(2026, 10, 24, 22), "local", "down", "ReadTimeout")
    event(paris_time(2026, 10, 25, 22), "local", "up")
    event(paris_time(2026, 11, 10, 10), "local", "down", "HTTP503")  # ongoing
    now = paris_time(2026, 11, 10, 12)

    months = Availability(BOT, now).months(3)

    assert [(m.month.astimezone(PARIS).month, m.incidents, m.downtime) for m in months] == [
        (11, 1, 2 * HOUR),
        (10, 2, HOUR + 25 * HOUR),
        (9, 1, HOUR),
    ]


@pytest.mark.usefixtures("paris")
def test_a_month_down_throughout_counts_its_23_or_25_hour_day() -> None:
    event(paris_time(2026, 1, 1), "local", "up")
    event(paris_time(2026, 2, 28, 12), "local", "down", "ConnectError")
    event(paris_time(2026, 4, 1, 12), "local", "up")
    event(paris_time(2026, 9, 30, 12), "local", "down", "ConnectError")
    event(paris_time(2026, 11, 1, 12), "local", "up")

    spring = Availability(BOT, paris_time(2026, 4, 15)).months(3)
    fall = Availability(BOT, paris_time(2026, 11, 15)).months(3)

    assert [(m.incidents, m.downtime) for m in spring] == [
        (1, 12 * HOUR),
        (1, 31 * 24 * HOUR - HOUR),
        (1, 12 * HOUR),
    ]
    assert [(m.incidents, m.downtime) for m in fall] == [
        (1, 12 * HOUR),
        (1, 31 * 24 * HOUR + HOUR),
        (1, 12 * HOUR),
    ]


@pytest.mark.usefixtures("paris")
def test_uptime_of_the_fall_back_day_expects_25_hours() -> None:
    event(paris_time(2026, 10, 1), "local", "up")
    event(paris_time(2026, 10, 25, 12), "local", "down", "ConnectError")
    event(paris_time(2026, 10, 26, 2), "local", "up")
    day = local_time.day_start(paris_time(2026, 10, 25, 12))

    uptime = Availability(BOT, paris_time(2026, 11, 1)).uptime("local", day, local_time.next_day(day))

    assert (uptime.expected, uptime.downtime, uptime.percent) == (25 * HOUR, 12 * HOUR, percent(12, 25))


def test_union_covers_each_instant_once() -> None:
    spans = [(T, T + 2 * HOUR), (T + HOUR, T + 3 * HOUR), (T + 5 * HOUR, None), (T - 9 * HOUR, T - 8 * HOUR)]

    assert union(spans, T - 24 * HOUR, T + 24 * HOUR, T + 6 * HOUR) == 3 * HOUR + HOUR + HOUR
    assert union(spans, T + HOUR, T + 5 * HOUR, T + 6 * HOUR) == 2 * HOUR
    assert union([], T, T + HOUR, T) == ZERO
