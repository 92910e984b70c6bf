"""The alerts loop of a bot process: every few seconds, find events, queue alerts, send them.

Written for weeks, like the other loops: a database outage is one line when it starts
and one when it ends, any other error is logged (once while it repeats) and the loop
goes on; only `stop` (SIGTERM) or a cancellation ends it. Every process that runs a
worker or adapters runs one: the database makes each alert go out once between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from asgiref.sync import sync_to_async
from django.utils import timezone

from llm.alerts.dispatch import BATCH, claim_due, deliver, record
from llm.alerts.models import Alert
from llm.alerts.rules import find_events, queue, watch_adapters
from llm.alerts.seed import seed_targets
from llm.alerts.transports import TransportError
from serdabot.database import database_label, reconnecting
from serdabot.outage import Outage, connection_errors, describe

log = logging.getLogger("llm.alerts")

INTERVAL = 5.0  # seconds between passes: an alert goes out within this of its event's rule


def _seed() -> None:
    with reconnecting():
        seed_targets()


def _find_and_queue(now: datetime) -> int:
    with reconnecting():
        watch_adapters(now)
        return queue(find_events(now), now)


def _claim(now: datetime) -> list[Alert]:
    with reconnecting():
        return claim_due(now, limit=1)


def _record(alert: Alert, failure: TransportError | None, now: datetime) -> None:
    with reconnecting():
        record(alert, failure, now)


async def pass_once() -> None:
    """One pass: events to alerts, then the due alerts sent."""
    await sync_to_async(_find_and_queue)(timezone.now())
    for _turn in range(BATCH):
        # One claimed at a time: a lease outlives one send, never a batch of slow ones (a
        # second process would take the rest back and send them too).
        claimed = await sync_to_async(_claim)(timezone.now())
        if not claimed:
            return
        for alert in claimed:
            # Off the thread the bot's database work shares: a receiver slow to answer (up to
            # the transport's timeout) must not hold up the history or the adapters' state.
            failure = await sync_to_async(deliver, thread_sensitive=False)(alert)
            await sync_to_async(_record)(alert, failure, timezone.now())


async def seed_once() -> bool:
    """The environment's targets; False while the database cannot be reached (try again)."""
    try:
        await sync_to_async(_seed)()
    except connection_errors():
        return False
    except Exception:
        # Not worth stopping the alerts for: the targets can be made in the admin.
        log.exception("alert targets from the environment not created")
    return True


async def run_alerts(stop: asyncio.Event, *, interval: float = INTERVAL) -> None:
    outage = Outage("alerts", database_label(), log)
    seeded = False
    repeating = ""  # the last unexpected error logged, not logged again while it repeats
    while not stop.is_set():
        try:
            seeded = seeded or await seed_once()
            await pass_once()
        except connection_errors() as exc:
            outage.failed(exc)  # one line per outage; the next pass is the retry
        except Exception as exc:
            if describe(exc) != repeating:
                repeating = describe(exc)
                log.exception("alerts: a pass failed; trying again every %.0f s", interval)
        else:
            outage.recovered()
            repeating = ""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
