"""Incidents and absences opened and closed from state changes, and rebuilt from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from llm.history import periods
from llm.models import Absence, Incident, TierEvent, TierStatus
from tests.dashboard_history import HOUR, event

pytestmark = pytest.mark.django_db

T = datetime(2026, 6, 1, 12, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def incidents(scope: str = "bot") -> list[tuple[str, datetime, datetime | None, str, str]]:
    rows = Incident._default_manager.filter(scope=scope).order_by("started")
    return list(rows.values_list("tier", "started", "ended", "state", "cause"))


def absences(scope: str = "bot") -> list[tuple[str, str, datetime, datetime | None]]:
    rows = Absence._default_manager.filter(scope=scope).order_by("started")
    return list(rows.values_list("tier", "kind", "started", "ended"))


def status(tier: str, scope: str = "bot") -> TierStatus:
    return TierStatus._default_manager.get(tier=tier, scope=scope)


def test_a_tier_that_was_up_and_failed_has_an_incident_until_it_answers() -> None:
    event(T, "local", "up")
    event(T + HOUR, "local", "down", "ConnectError")
    event(T + 2 * HOUR, "local", "up")

    assert incidents() == [("local", T + HOUR, T + 2 * HOUR, "down", "ConnectError")]
    assert absences() == []


def test_a_closed_period_knows_its_length_and_an_open_one_does_not() -> None:
    event(T, "local", "up")
    event(T + HOUR, "local", "down", "ConnectError")
    event(T + 150 * MINUTE, "local", "paused")

    assert list(Incident._default_manager.values_list("seconds", flat=True)) == [5400.0]
    assert list(Absence._default_manager.values_list("seconds", flat=True)) == [None]


def test_an_incident_without_an_up_is_ongoing() -> None:
    event(T, "openai", "up")
    event(T + HOUR, "openai", "down", "AuthenticationError")

    assert incidents() == [("openai", T + HOUR, None, "down", "AuthenticationError")]
    current = status("openai")
    assert (current.state, current.since, current.up_seen, current.first_seen) == ("down", T + HOUR, True, T)


def test_down_cooling_down_is_one_incident() -> None:
    event(T, "local", "up")
    event(T + HOUR, "local", "down", "ReadTimeout")
    event(T + 2 * HOUR, "local", "cooling", "ReadTimeout")
    event(T + 3 * HOUR, "local", "down", "HTTP503")
    event(T + 4 * HOUR, "local", "warming")
    event(T + 5 * HOUR, "local", "up")

    assert incidents() == [("local", T + HOUR, T + 5 * HOUR, "down", "ReadTimeout")]
    # The status follows every change; the incident keeps the state that opened it.
    assert TierStatus._default_manager.count() == 1


def test_a_pause_is_an_absence_that_ends_an_incident() -> None:
    event(T, "local", "up")
    event(T + HOUR, "local", "paused")
    event(T + 2 * HOUR, "local", "up")
    event(T + 3 * HOUR, "local", "down", "ConnectError")
    event(T + 4 * HOUR, "local", "paused")
    event(T + 5 * HOUR, "local", "down", "ConnectError")

    assert absences() == [
        ("local", "paused", T + HOUR, T + 2 * HOUR),
        ("local", "paused", T + 4 * HOUR, T + 5 * HOUR),
    ]
    # Still up seen after the pause: the failure after it is downtime again.
    assert incidents() == [
        ("local", T + 3 * HOUR, T + 4 * HOUR, "down", "ConnectError"),
        ("local", T + 5 * HOUR, None, "down", "ConnectError"),
    ]


def test_disabled_and_not_configured_are_absences() -> None:
    event(T, "local", "up")
    event(T + HOUR, "local", "disabled")
    event(T + 2 * HOUR, "openai", "not_configured")

    assert absences() == [
        ("local", "disabled", T + HOUR, None),
        ("openai", "not_configured", T + 2 * HOUR, None),
    ]
    assert incidents() == []


def test_a_tier_never_detected_is_absent_not_down() -> None:
    # Boot detection finds nothing: "down" with no "up" before it.
    event(T, "local", "down", "ConnectError")
    event(T + HOUR, "local", "cooling", "ConnectError")
    event(T + 2 * HOUR, "local", "down", "ConnectError")

    assert incidents() == []
    assert absences() == [("local", "never_found", T, None)]
    assert status("local").up_seen is False

    event(T + 3 * HOUR, "local", "up")
    event(T + 4 * HOUR, "local", "down", "ReadTimeout")

    assert absences() == [("local", "never_found", T, T + 3 * HOUR)]
    assert incidents() == [("local", T + 4 * HOUR, None, "down", "ReadTimeout")]


def test_over_budget_is_an_absence() -> None:
    event(T, "openai", "up")
    event(T + HOUR, "openai", "budget")
    event(T + 10 * HOUR, "openai", "up")

    assert absences() == [("openai", "budget", T + HOUR, T + 10 * HOUR)]
    assert incidents() == []


@pytest.mark.parametrize("reset", ["disabled", "not_configured"])
def test_configuring_anew_forgets_that_the_tier_was_up(reset: str) -> None:
    event(T, "openai", "up")
    event(T + HOUR, "openai", reset)
    event(T + 2 * HOUR, "openai", "down", "AuthenticationError")

    assert incidents() == []
    assert absences() == [
        ("openai", reset, T + HOUR, T + 2 * HOUR),
        ("openai", "never_found", T + 2 * HOUR, None),
    ]
    assert status("openai").up_seen is False


def test_a_pause_does_not_forget_that_the_tier_was_up() -> None:
    event(T, "openai", "up")
    event(T + HOUR, "openai", "paused")
    event(T + 2 * HOUR, "openai", "down", "HTTP500")

    assert incidents() == [("openai", T + 2 * HOUR, None, "down", "HTTP500")]


def test_a_change_that_arrives_late_is_kept_but_does_not_move_periods() -> None:
    event(T, "local", "up")
    event(T + 2 * HOUR, "local", "down", "ConnectError")
    # Written by a process that waited out a database outage: older than the latest change.
    event(T + HOUR, "local", "up")
    event(T + 90 * MINUTE, "local", "cooling", "ReadTimeout")

    assert TierEvent._default_manager.count() == 4
    assert incidents() == [("local", T + 2 * HOUR, None, "down", "ConnectError")]
    current = status("local")
    assert (current.state, current.changed, current.since) == ("down", T + 2 * HOUR, T + 2 * HOUR)


def test_a_change_at_the_same_instant_as_the_latest_is_not_late() -> None:
    event(T, "local", "up")
    event(T + HOUR, "local", "down", "ConnectError")
    event(T + HOUR, "local", "up")

    assert incidents() == [("local", T + HOUR, T + HOUR, "down", "ConnectError")]
    assert status("local").state == "up"


def test_console_runs_have_periods_of_their_own() -> None:
    event(T, "local", "up")
    event(T + HOUR, "local", "down", "ConnectError", role="console")
    event(T + 2 * HOUR, "local", "up", role="console")
    event(T + 3 * HOUR, "local", "down", "ReadTimeout", role="console")

    # The console never saw the tier up before its first failure: not found, not downtime.
    assert absences("console") == [("local", "never_found", T + HOUR, T + 2 * HOUR)]
    assert incidents("console") == [("local", T + 3 * HOUR, None, "down", "ReadTimeout")]
    assert incidents("bot") == [] and absences("bot") == []
    assert (status("local", "bot").state, status("local", "console").state) == ("up", "down")
    assert Incident._default_manager.get().role == "console"


def test_tiers_are_kept_apart() -> None:
    event(T, "local", "up")
    event(T, "openai", "up")
    event(T + HOUR, "local", "down", "ConnectError")
    event(T + 2 * HOUR, "openai", "budget")
    event(T + 3 * HOUR, "openai", "up")

    assert incidents() == [("local", T + HOUR, None, "down", "ConnectError")]
    assert absences() == [("openai", "budget", T + 2 * HOUR, T + 3 * HOUR)]


def test_a_batch_is_applied_in_time_order() -> None:
    rows = [
        TierEvent._default_manager.create(created=T + HOUR, tier="local", state="down", error="ConnectError"),
        TierEvent._default_manager.create(created=T, tier="local", state="up"),
        TierEvent._default_manager.create(created=T + 2 * HOUR, tier="local", state="up"),
    ]

    periods.apply(rows)

    assert incidents() == [("local", T + HOUR, T + 2 * HOUR, "down", "ConnectError")]


# -- rebuild ------------------------------------------------------------------------


def mixed_history() -> None:
    """Every rule at least once, on both tiers and both scopes."""
    event(T - 10 * HOUR, "local", "down", "ConnectError")  # never found at boot
    event(T - 9 * HOUR, "local", "up")
    event(T - 8 * HOUR, "local", "down", "ReadTimeout")
    event(T - 7 * HOUR, "local", "cooling", "ReadTimeout")
    event(T - 6 * HOUR, "local", "up")
    event(T - 5 * HOUR, "local", "paused")
    event(T - 4 * HOUR, "local", "up")
    event(T - 3 * HOUR, "local", "disabled")
    event(T - 2 * HOUR, "local", "down", "ConnectError")  # after a reset: never found again
    event(T - HOUR, "local", "up")
    event(T, "local", "warming")  # ongoing
    event(T - 9 * HOUR, "openai", "not_configured")
    event(T - 8 * HOUR, "openai", "up")
    event(T - 4 * HOUR, "openai", "budget")
    event(T - 2 * HOUR, "openai", "up")
    event(T - 90 * MINUTE, "openai", "down", "HTTP500")
    event(T - 9 * HOUR, "local", "down", "ConnectError", role="console")
    event(T - 8 * HOUR, "local", "up", role="console")
    event(T - 7 * HOUR, "local", "down", "ConnectError", role="console")


def snapshot() -> dict[str, list[tuple[object, ...]]]:
    columns = ("tier", "scope", "started", "ended", "seconds", "state", "cause", "role")
    status_columns = ("tier", "scope", "state", "since", "up_seen", "first_seen", "changed", "error")
    return {
        "incidents": sorted(Incident._default_manager.values_list(*columns)),
        "absences": sorted(Absence._default_manager.values_list("kind", *columns)),
        "statuses": sorted(TierStatus._default_manager.values_list(*status_columns)),
    }


def test_rebuild_reproduces_what_the_writer_built() -> None:
    mixed_history()
    built = snapshot()
    assert len(built["incidents"]) == 4 and len(built["absences"]) == 7 and len(built["statuses"]) == 3
    Incident._default_manager.all().delete()
    Absence._default_manager.all().delete()
    TierStatus._default_manager.all().delete()

    counts = periods.rebuild()

    assert snapshot() == built
    assert counts == {"events": 19, "incidents": 4, "absences": 7}


def test_rebuild_over_the_writer_s_rows_changes_nothing() -> None:
    mixed_history()
    built = snapshot()

    periods.rebuild()

    assert snapshot() == built


def test_rebuild_keeps_periods_older_than_the_state_changes_kept() -> None:
    event(T - 30 * HOUR, "local", "up")
    event(T - 20 * HOUR, "local", "down", "ConnectError")
    event(T - 10 * HOUR, "local", "up")
    event(T - 5 * HOUR, "local", "down", "ReadTimeout")
    event(T - 4 * HOUR, "local", "up")
    # The oldest changes are pruned; the incident they opened stays.
    TierEvent._default_manager.filter(created__lt=T - 6 * HOUR).delete()

    periods.rebuild()

    assert incidents()[0] == ("local", T - 20 * HOUR, T - 10 * HOUR, "down", "ConnectError")


def test_rebuild_without_state_changes_changes_nothing() -> None:
    Incident._default_manager.create(tier="local", started=T, state="down")

    assert periods.rebuild() == {"events": 0, "incidents": 0, "absences": 0}
    assert Incident._default_manager.count() == 1


def test_kind_of_sorts_states_into_up_incident_and_absence() -> None:
    assert periods.kind_of("down", up_seen=True) == ("incident", "")
    assert periods.kind_of("warming", up_seen=True) == ("incident", "")
    assert periods.kind_of("cooling", up_seen=False) == ("absence", "never_found")
    assert periods.kind_of("budget", up_seen=True) == ("absence", "budget")
    assert periods.kind_of("paused", up_seen=False) == ("absence", "paused")
    assert periods.kind_of("up", up_seen=False) == ("up", "")


def test_rebuild_after_retention_redoes_each_tier_from_its_own_oldest_change() -> None:
    # Retention keeps each tier's latest change: local's lone "up" is far older than openai's.
    event(T - 200 * 24 * HOUR, "local", "up")
    event(T - 180 * 24 * HOUR, "openai", "up")
    event(T - 150 * 24 * HOUR, "openai", "down", "HTTP500")
    event(T - 150 * 24 * HOUR + HOUR, "openai", "up")
    event(T - 30 * 24 * HOUR, "openai", "down", "ReadTimeout")
    event(T - 29 * 24 * HOUR, "openai", "up")
    before = incidents()
    first_seen = status("openai").first_seen
    TierEvent._default_manager.filter(tier="openai", created__lt=T - 31 * 24 * HOUR).delete()

    periods.rebuild()

    # The older incident is kept, and the one after the pruned "up" is still downtime.
    assert incidents() == before
    assert absences() == []
    assert status("openai").first_seen == first_seen
    assert status("openai").state == "up" and status("local").state == "up"


def test_rebuild_carries_on_an_outage_older_than_the_changes_kept() -> None:
    event(T - 10 * HOUR, "local", "up")
    event(T - 8 * HOUR, "local", "down", "ConnectError")
    event(T - 6 * HOUR, "local", "cooling", "HTTP429")
    event(T - 2 * HOUR, "local", "up")
    TierEvent._default_manager.filter(created__lt=T - 7 * HOUR).delete()

    periods.rebuild()

    # One incident from 8 h to 2 h ago, not cut at the oldest change kept.
    assert incidents() == [("local", T - 8 * HOUR, T - 2 * HOUR, "down", "ConnectError")]
    [seconds] = Incident._default_manager.values_list("seconds", flat=True)
    assert seconds == 6 * 3600


def test_a_stopped_bot_is_offline_and_a_slow_model_at_the_next_start_is_no_outage() -> None:
    event(T, "local", "up")
    event(T + HOUR, "local", "stopped")
    # Monday: the bot starts while LM Studio loads its model, then the model answers.
    event(T + 60 * HOUR, "local", "warming")
    event(T + 60 * HOUR + 2 * MINUTE, "local", "up")

    assert incidents() == []
    assert absences() == [
        ("local", "offline", T + HOUR, T + 60 * HOUR),
        ("local", "never_found", T + 60 * HOUR, T + 60 * HOUR + 2 * MINUTE),
    ]
    # Once it answered again, a failure is downtime as before.
    event(T + 61 * HOUR, "local", "down", "ReadTimeout")
    assert [(i[0], i[1], i[2]) for i in incidents()] == [("local", T + 61 * HOUR, None)]
