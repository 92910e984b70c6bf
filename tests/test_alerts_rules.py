"""Rules: which history rows make an alert, and that an event is queued once per target."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from chatbridge.models import AdapterState
from llm.alerts.models import AdapterOutage, Alert, AlertRules, AlertTarget
from llm.alerts.rules import LOOKBACK, find_events, identity, queue, watch_adapters
from tests.alert_helpers import absence, email, incident

pytestmark = pytest.mark.django_db

S = timedelta(seconds=1)
State = AdapterState.State


def run(now: datetime) -> int:
    """One pass of the loop's rule steps."""
    watch_adapters(now)
    return queue(find_events(now), now)


def keys() -> list[tuple[str, str, str]]:
    return sorted(Alert.objects.values_list("target__name", "event", "key"))


@pytest.fixture
def now() -> datetime:
    return timezone.now()


@pytest.fixture
def target() -> AlertTarget:
    return email()


def test_a_tier_down_longer_than_the_delay_alerts_each_enabled_target_once(
    now: datetime, target: AlertTarget
) -> None:
    other = email("other@example.com", name="Other")
    AlertTarget.objects.filter(pk=email("off@example.com", name="Disabled").pk).update(enabled=False)
    down = incident(now - 61 * S)

    for _ in range(3):
        run(now)

    assert keys() == [
        ("Email", "down", f"incident:{identity(down)}:down"),
        ("Other", "down", f"incident:{identity(down)}:down"),
    ]
    alert = Alert.objects.get(target=other)
    assert (alert.status, alert.about, alert.subject) == ("pending", "local", "Local LLM is down")
    assert "ConnectError: connection refused" in alert.body


def test_two_processes_queue_one_alert_per_event(now: datetime, target: AlertTarget) -> None:
    down = incident(now - 120 * S)

    for moment in (now, now + S, now + 5 * S):
        assert run(moment) == (1 if moment == now else 0)

    assert keys() == [("Email", "down", f"incident:{identity(down)}:down")]


def test_two_processes_interleaved_still_queue_one_alert(now: datetime, target: AlertTarget) -> None:
    # The second process looks for queued alerts, finds none, and the first inserts before
    # the second does: only the database's unique (target, key) can keep one.
    down = incident(now - 120 * S)
    seen_by_first, seen_by_second = find_events(now), find_events(now + S)
    first_queued: list[int] = []

    def first_inserts_meanwhile(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if 'FROM "llm_alert"' in sql and not first_queued:
            first_queued.append(-1)
            first_queued[0] = queue(seen_by_first, now)
        return result

    with connection.execute_wrapper(first_inserts_meanwhile):
        queue(seen_by_second, now + S)

    assert first_queued == [1]
    assert keys() == [("Email", "down", f"incident:{identity(down)}:down")]
    assert Alert.objects.get().created == now  # the first's row, left as it was


def test_a_blip_shorter_than_the_delay_sends_nothing(now: datetime, target: AlertTarget) -> None:
    incident(now - 300 * S, now - 250 * S)  # 50 s, over
    still_short = incident(now - 59 * S, tier="openai")

    run(now)
    assert keys() == []

    run(now + 2 * S)  # the open one has now lasted past the delay
    assert keys() == [("Email", "down", f"incident:{identity(still_short)}:down")]


def test_the_delay_is_the_rules(now: datetime, target: AlertTarget) -> None:
    AlertRules.objects.create(down_after=300)
    incident(now - 200 * S)

    run(now)

    assert keys() == []


def test_back_up_follows_only_a_down_alert(now: datetime, target: AlertTarget) -> None:
    down = incident(now - 120 * S)
    run(now)
    down.ended = now + 10 * S
    down.save()

    run(now + 15 * S)
    run(now + 20 * S)

    assert keys() == [
        ("Email", "down", f"incident:{identity(down)}:down"),
        ("Email", "up", f"incident:{identity(down)}:up"),
    ]
    up = Alert.objects.get(event="up")
    assert up.subject == "Local LLM is back up"
    assert "2 min 10 s" in up.body


def test_a_target_added_while_a_tier_is_down_hears_it_but_no_back_up_without_its_down(
    now: datetime, target: AlertTarget
) -> None:
    down = incident(now - 120 * S)
    AlertRules.objects.create(on_down=True, on_back_up=True)
    run(now)
    down.ended = now
    down.save()
    late = AlertTarget.objects.create(name="Late", kind="email", email_to="late@example.com", created=now + S)

    run(now + 5 * S)

    assert not Alert.objects.filter(target=late).exists()
    assert Alert.objects.filter(target=target).count() == 2


def test_an_incident_over_before_alerts_saw_it_sends_down_then_up_in_one_pass(
    now: datetime, target: AlertTarget
) -> None:
    # The bot's alerts were away (a database outage) for the whole incident.
    over = incident(now - 600 * S, now - 300 * S)

    run(now)

    assert [a.event for a in Alert.objects.order_by("pk")] == ["down", "up"]
    assert keys()[1] == ("Email", "up", f"incident:{identity(over)}:up")


def test_switched_off_rules_send_nothing(now: datetime, target: AlertTarget) -> None:
    AlertRules.objects.create(on_down=False, on_budget=False, on_adapter=False)
    incident(now - 120 * S, now)
    absence(now - 60 * S)
    AdapterState.objects.create(platform="twitch", state=State.FAILED, last_error="bad token", updated=now)

    run(now - 120 * S)
    run(now)

    assert keys() == []


def test_console_incidents_and_other_absences_never_alert(now: datetime, target: AlertTarget) -> None:
    incident(now - 120 * S, scope="console")
    for kind in ("never_found", "disabled", "not_configured", "paused"):
        absence(now - 120 * S, kind=kind, tier="local")
    absence(now - 120 * S, scope="console")

    run(now)

    assert keys() == []


def test_the_budget_reached_alerts_once(now: datetime, target: AlertTarget) -> None:
    reached = absence(now - 5 * S)

    run(now)
    run(now + 60 * S)

    assert keys() == [("Email", "budget", f"budget:{identity(reached)}")]
    assert Alert.objects.get().subject == "OpenAI daily budget reached"


def test_old_history_never_floods_a_fresh_install(now: datetime, target: AlertTarget) -> None:
    incident(now - LOOKBACK - 3600 * S, now - LOOKBACK - 60 * S)
    absence(now - LOOKBACK - 7200 * S, now - LOOKBACK - 3600 * S)
    AdapterState.objects.create(
        platform="discord", state=State.RECONNECTING, last_error="x", updated=now - LOOKBACK - S
    )

    run(now)

    assert keys() == []
    assert not AdapterOutage.objects.exists()


def test_an_event_over_before_a_target_existed_is_not_news_to_it(now: datetime) -> None:
    incident(now - 600 * S, now - 300 * S)
    AlertTarget.objects.create(name="New", kind="email", email_to="new@example.com", created=now - 60 * S)

    run(now)

    assert keys() == []


def adapter(platform: str, state: str, at: datetime, error: str = "") -> None:
    """What an adapter's status writes (chatbridge/adapters/status.py)."""
    AdapterState.objects.update_or_create(
        platform=platform, defaults={"state": state, "last_error": error, "updated": at}
    )


def test_an_adapter_failing_then_back_alerts_once_each(now: datetime, target: AlertTarget) -> None:
    adapter("twitch", State.CONNECTED, now)
    run(now)
    adapter("twitch", State.RECONNECTING, now + S, "ConnectionError: EventSub websocket closed")
    run(now + 2 * S)
    # The supervisor's retry: `starting` with the last error kept is still failing.
    adapter("twitch", State.STARTING, now + 30 * S, "ConnectionError: EventSub websocket closed")
    run(now + 30 * S)
    assert keys() == []

    run(now + 62 * S)
    run(now + 65 * S)
    adapter("twitch", State.CONNECTED, now + 70 * S)
    run(now + 70 * S)
    run(now + 75 * S)

    since = (now + S).isoformat()
    assert keys() == [
        ("Email", "adapter_back", f"adapter:twitch:back:{since}"),
        ("Email", "adapter_failing", f"adapter:twitch:failing:{since}"),
    ]
    failing = Alert.objects.get(event="adapter_failing")
    assert (failing.about, failing.subject) == ("twitch", "Twitch adapter failing")
    assert "EventSub websocket closed" in failing.body


def test_a_quick_reconnection_is_not_news(now: datetime, target: AlertTarget) -> None:
    adapter("discord", State.RECONNECTING, now, "gateway disconnected")
    run(now)
    adapter("discord", State.CONNECTED, now + 3 * S)
    run(now + 5 * S)
    run(now + 120 * S)

    assert keys() == []
    assert AdapterOutage.objects.get().ended == now + 5 * S


def test_a_first_start_is_not_a_failure(now: datetime, target: AlertTarget) -> None:
    adapter("discord", State.STARTING, now - 300 * S)
    run(now)

    assert not AdapterOutage.objects.exists()


def test_two_processes_watching_one_failing_adapter_share_its_spell(
    now: datetime, target: AlertTarget
) -> None:
    adapter("discord", State.FAILED, now, "AdapterFatal: the token was refused")
    watch_adapters(now + S)  # the adapters' process
    watch_adapters(now + 2 * S)  # a worker's
    queue(find_events(now + 61 * S), now + 61 * S)
    queue(find_events(now + 62 * S), now + 62 * S)

    assert AdapterOutage.objects.count() == 1
    assert keys() == [("Email", "adapter_failing", f"adapter:discord:failing:{now.isoformat()}")]


def test_a_second_failing_spell_is_a_second_event(now: datetime, target: AlertTarget) -> None:
    for start in (now, now + 600 * S):
        adapter("twitch", State.RECONNECTING, start, "boom")
        run(start)
        run(start + 61 * S)
        adapter("twitch", State.CONNECTED, start + 100 * S)
        run(start + 100 * S)

    assert [e for _, e, _ in keys()] == ["adapter_back"] * 2 + ["adapter_failing"] * 2


def test_rebuilding_the_incidents_sends_no_alert_again(now: datetime, target: AlertTarget) -> None:
    from llm.history import periods
    from llm.models import TierEvent
    from tests.dashboard_history import event

    event(now - 10 * 60 * S, "local", "up")
    event(now - 5 * 60 * S, "local", "down", "ConnectError")
    event(now - 2 * 60 * S, "local", "up")
    run(now)
    sent = keys()
    assert [e for _, e, _ in sent] == ["down", "up"]

    periods.rebuild()  # what `rebuildrollups` does: the incident rows are made anew

    assert TierEvent.objects.count() == 3
    assert run(now) == 0
    assert keys() == sent


def test_a_bot_stopped_during_an_outage_sends_no_back_up(now: datetime, target: AlertTarget) -> None:
    from tests.dashboard_history import event

    event(now - 10 * 60 * S, "local", "up")
    event(now - 5 * 60 * S, "local", "down", "ConnectError")
    event(now - 2 * 60 * S, "local", "stopped")  # the streamer restarts the bot to fix it

    run(now)

    assert [e for _, e, _ in keys()] == ["down"]
