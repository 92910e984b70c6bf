"""Dispatch: queued alerts claimed once, sent to a real receiver on 127.0.0.1, retried, recorded."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from llm.alerts.dispatch import LEASE, MAX_ATTEMPTS, backoff, claim_due, send_due, send_test
from llm.alerts.models import Alert, AlertTarget
from llm.alerts.rules import find_events, identity, queue, watch_adapters
from tests.alert_helpers import discord, email, incident, webhook
from tests.fakes.webhook_receiver import Answer, WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.django_db

S = timedelta(seconds=1)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


def queued(target: AlertTarget, now: datetime, key: str = "incident:1:down") -> Alert:
    return Alert.objects.create(
        created=now,
        target=target,
        event=Alert.Event.DOWN,
        key=key,
        about="local",
        subject="Local LLM is down",
        body="Down since 20:00.",
        next_try=now,
    )


def fresh(alert: Alert) -> Alert:
    return Alert.objects.get(pk=alert.pk)


@pytest.fixture
def now() -> datetime:
    return timezone.now()


def test_a_500_then_a_204_is_retried_and_sent(receiver: WebhookReceiver, now: datetime) -> None:
    alert = queued(discord(receiver), now)
    receiver.answer(Answer(500), Answer(204))

    assert send_due(now) == 1
    first = fresh(alert)
    assert (first.status, first.attempts, first.last_error) == ("pending", 1, "HTTP 500")
    assert first.next_try == now + 10 * S

    assert send_due(now + 9 * S) == 0  # not due yet
    assert len(receiver.received) == 1

    assert send_due(now + 10 * S) == 1
    sent = fresh(alert)
    assert (sent.status, sent.attempts, sent.sent) == ("sent", 2, now + 10 * S)
    assert sent.last_error == "HTTP 500"  # why it took two tries stays on record
    assert len(receiver.received) == 2

    assert send_due(now + 3600 * S) == 0
    assert len(receiver.received) == 2


def test_an_incident_reaches_discord_and_a_webhook_once_however_often_the_loop_runs(
    receiver: WebhookReceiver, now: datetime
) -> None:
    discord(receiver)
    webhook(receiver)
    down = incident(now - 90 * S)

    for step in range(5):
        moment = now + step * S
        watch_adapters(moment)
        queue(find_events(moment), moment)
        send_due(moment)

    paths = sorted(r.path.split("?")[0] for r in receiver.received)
    assert paths == ["/api/webhooks/1234567890/" + receiver.TOKEN, "/hooks/serdabot"]
    generic = next(r.body for r in receiver.received if r.path.startswith("/hooks"))
    assert (generic["event"], generic["tier"], generic["subject"]) == ("down", "local", "Local LLM is down")
    assert set(Alert.objects.values_list("key", "status")) == {(f"incident:{identity(down)}:down", "sent")}


def test_a_claimed_alert_is_not_claimed_again(receiver: WebhookReceiver, now: datetime) -> None:
    queued(discord(receiver), now)

    assert len(claim_due(now)) == 1
    assert claim_due(now) == []
    assert claim_due(now + S) == []


def test_two_processes_interleaved_send_an_alert_once(receiver: WebhookReceiver, now: datetime) -> None:
    # The second process reads the due alerts, then the first claims and sends them before
    # the second claims: its conditional update finds the row moved on and leaves it.
    queued(discord(receiver), now)
    first_sent: list[int] = []

    def first_sends_meanwhile(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if sql.lstrip().upper().startswith("SELECT") and 'FROM "llm_alert"' in sql and not first_sent:
            first_sent.append(-1)
            first_sent[0] = send_due(now)
        return result

    with connection.execute_wrapper(first_sends_meanwhile):
        second = send_due(now)

    assert (first_sent, second) == ([1], 0)
    assert len(receiver.received) == 1
    assert Alert.objects.get().attempts == 1


def test_failures_back_off_doubling_then_fail_for_good(receiver: WebhookReceiver, now: datetime) -> None:
    alert = queued(webhook(receiver), now)
    receiver.answer(*[Answer(503)] * MAX_ATTEMPTS)
    waits = []
    moment = now
    while send_due(moment):
        row = fresh(alert)
        if row.status == "pending":
            waits.append((row.next_try - moment).total_seconds())
            moment = row.next_try

    failed = fresh(alert)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", MAX_ATTEMPTS, "HTTP 503")
    assert waits == [10, 20, 40, 80, 160, 320, 600]
    assert len(receiver.received) == MAX_ATTEMPTS
    assert backoff(30) == 600


def test_a_429_is_tried_again_when_it_says(receiver: WebhookReceiver, now: datetime) -> None:
    alert = queued(discord(receiver), now)
    receiver.answer(Answer(429, headers={"Retry-After": "30"}))

    send_due(now)

    row = fresh(alert)
    assert (row.status, row.next_try) == ("pending", now + 30 * S)
    assert row.last_error.startswith("HTTP 429")


def test_a_refusal_fails_at_once(receiver: WebhookReceiver, now: datetime) -> None:
    alert = queued(discord(receiver), now)
    receiver.answer(Answer(404, body={"message": "Unknown Webhook", "code": 10015}))

    send_due(now)
    send_due(now + 3600 * S)

    row = fresh(alert)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "HTTP 404")
    assert len(receiver.received) == 1


def test_an_email_alert_goes_through_djangos_mail(now: datetime) -> None:
    alert = queued(email("streamer@example.com"), now)

    send_due(now)

    assert fresh(alert).status == "sent"
    [message] = mail.outbox
    assert (message.to, message.subject) == (["streamer@example.com"], "Local LLM is down")


def test_an_alert_whose_sender_died_is_taken_again_after_the_lease(
    receiver: WebhookReceiver, now: datetime
) -> None:
    alert = queued(discord(receiver), now)
    claim_due(now)  # a process took it and was killed before sending

    assert send_due(now + LEASE - S) == 0
    assert send_due(now + LEASE) == 1

    row = fresh(alert)
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(receiver.received) == 1


def test_logs_name_the_target_never_its_url(
    receiver: WebhookReceiver, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    queued(discord(receiver, name="Mod channel"), now)
    receiver.answer(Answer(500))

    with caplog.at_level(logging.INFO, logger="llm.alerts"):
        send_due(now)
        send_due(now + 10 * S)

    said = [r.getMessage() for r in caplog.records if r.name == "llm.alerts"]
    assert said == [
        "alert down to Mod channel not sent (HTTP 500); trying again in 10 s",
        "alert down sent to Mod channel",
    ]
    assert receiver.TOKEN not in caplog.text


def test_a_test_alert_is_sent_at_once_and_recorded(receiver: WebhookReceiver) -> None:
    target = discord(receiver)

    assert send_test(target) is None

    [request] = receiver.received
    assert "Test alert" in request.body["content"]
    row = Alert.objects.get()
    assert (row.event, row.status, row.attempts) == ("test", "sent", 1)
    assert send_due(timezone.now() + LEASE * 2) == 0


def test_a_failed_test_alert_says_why_and_is_not_retried(receiver: WebhookReceiver) -> None:
    target = webhook(receiver)
    receiver.answer(Answer(500))

    failure = send_test(target)

    assert failure is not None and failure.reason == "HTTP 500"
    row = Alert.objects.get()
    assert (row.status, row.last_error) == ("failed", "HTTP 500")
    assert send_due(timezone.now() + LEASE * 2) == 0
    assert len(receiver.received) == 1
