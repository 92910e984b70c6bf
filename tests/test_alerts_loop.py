"""The alerts loop: seeds the environment's targets, sends each alert once, outlives a database outage."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from llm.alerts.loop import run_alerts
from llm.alerts.models import Alert, AlertTarget
from llm.alerts.rules import queue
from tests.alert_helpers import incident
from tests.fakes.webhook_receiver import Answer, WebhookReceiver, webhook_receiver
from tests.proxied_database import database_away

pytestmark = pytest.mark.django_db(transaction=True)

INTERVAL = 0.05


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait (a bounded time) for `condition`; the assertions after say what was expected."""
    for _ in range(int(within / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture
async def stop() -> AsyncIterator[asyncio.Event]:
    event = asyncio.Event()
    yield event
    event.set()
    # Close the connection asgiref's thread opened (PostgreSQL drops the test database after).
    await sync_to_async(connections.close_all)()


async def test_it_seeds_the_environments_target_and_sends_an_incident_once(
    receiver: WebhookReceiver, stop: asyncio.Event
) -> None:
    now = timezone.now()
    await sync_to_async(incident)(now - timedelta(minutes=5))
    receiver.answer(Answer(500))  # the first try fails: the retry comes from the loop

    with override_settings(ALERT_WEBHOOK_URL=receiver.url):
        task = asyncio.create_task(run_alerts(stop, interval=INTERVAL))
        await until(lambda: len(receiver.received) >= 1)
        # Sent again only when due (10 s later): alerts already queued and claimed stay one.
        await asyncio.sleep(INTERVAL * 5)
        stop.set()
        await asyncio.wait_for(task, 5)

    target = await AlertTarget.objects.aget()
    assert (target.kind, target.url) == ("webhook", receiver.url)
    [alert] = [a async for a in Alert.objects.all()]
    assert (alert.event, alert.status, alert.attempts, alert.last_error) == ("down", "pending", 1, "HTTP 500")
    assert len(receiver.received) == 1


async def test_it_outlives_a_database_outage_with_one_line(
    receiver: WebhookReceiver, stop: asyncio.Event, caplog: pytest.LogCaptureFixture
) -> None:
    await AlertTarget.objects.acreate(
        name="Receiver", kind="webhook", url=receiver.url, created=timezone.now() - timedelta(days=1)
    )

    with caplog.at_level(logging.INFO, logger="llm.alerts"):
        async with database_away():
            task = asyncio.create_task(run_alerts(stop, interval=INTERVAL))
            await asyncio.sleep(INTERVAL * 10)
        # Back: an incident recorded now is alerted.
        await sync_to_async(incident)(timezone.now() - timedelta(minutes=5))
        await until(lambda: len(receiver.received) == 1)
        stop.set()
        await asyncio.wait_for(task, 5)

    said = [r for r in caplog.records if r.name == "llm.alerts"]
    warnings = [r.getMessage() for r in said if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("alerts: cannot reach ")
    assert "is back after" in warnings[1]
    assert not any(r.exc_info for r in said)
    assert (await Alert.objects.aget()).status == "sent"


async def test_an_unexpected_error_is_logged_once_and_the_loop_goes_on(
    receiver: WebhookReceiver,
    stop: asyncio.Event,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A bug in a step (stood in for by a failing queue) must not end the alerts for good.
    await AlertTarget.objects.acreate(
        name="Receiver", kind="webhook", url=receiver.url, created=timezone.now() - timedelta(days=1)
    )
    await sync_to_async(incident)(timezone.now() - timedelta(minutes=5))
    failures = {"left": 5}

    def buggy_queue(*args: object) -> int:
        if failures["left"]:
            failures["left"] -= 1
            raise KeyError("bug")
        return queue(*args)  # type: ignore[arg-type]

    monkeypatch.setattr("llm.alerts.loop.queue", buggy_queue)

    task = asyncio.create_task(run_alerts(stop, interval=INTERVAL))
    await until(lambda: len(receiver.received) == 1)
    stop.set()
    await asyncio.wait_for(task, 5)

    tracebacks = [r for r in caplog.records if r.name == "llm.alerts" and r.exc_info]
    assert len(tracebacks) == 1
    assert len(receiver.received) == 1
