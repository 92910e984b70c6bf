"""An install upgraded with months of raw history gets its roll-ups and incidents once, at start."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from llm.history.backfill import backfill_if_needed
from llm.models import CascadeCall, Incident, Probe, Rollup, TierEvent, TierStatus

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


def raw_history_of_an_older_version() -> None:
    now = timezone.now()
    for days in (40, 20, 3):
        Probe._default_manager.create(created=now - days * DAY, tier="local", ok=True, latency_ms=90.0)
        CascadeCall._default_manager.create(
            created=now - days * DAY, platform="twitch", intent="ask", source="local", latency_ms=800.0
        )
    TierEvent._default_manager.create(created=now - 30 * DAY, tier="local", state="up")
    TierEvent._default_manager.create(created=now - 10 * DAY, tier="local", state="down", error="ReadTimeout")
    TierEvent._default_manager.create(created=now - 10 * DAY + timedelta(minutes=5), tier="local", state="up")


def test_it_builds_roll_ups_and_incidents_from_earlier_rows_once() -> None:
    raw_history_of_an_older_version()

    assert backfill_if_needed() is True

    [incident] = Incident._default_manager.all()
    assert incident.ended is not None
    assert (incident.tier, incident.cause, incident.ended - incident.started) == (
        "local",
        "ReadTimeout",
        timedelta(minutes=5),
    )
    assert TierStatus._default_manager.get(tier="local").state == "up"
    # From the first whole local day the rows cover: the 20- and 3-day-old rows, by hour and by day.
    probes = Rollup._default_manager.filter(series="probe", period="day")
    assert sorted(r.count for r in probes) == [1, 1]
    assert Rollup._default_manager.filter(series="reply", period="hour").count() == 2

    assert backfill_if_needed() is False  # the writer keeps them from now on
    assert Incident._default_manager.count() == 1


def test_a_fresh_install_has_nothing_to_build() -> None:
    assert backfill_if_needed() is False
    assert not Rollup._default_manager.exists()
