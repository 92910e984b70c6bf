"""Sending queued alerts: each claimed by one process, sent, recorded, retried with backoff.

`claim_due`, `deliver` and `record` are the three steps; `send_due` runs them in one
thread (tests, the admin), the loop runs `deliver` in a thread of its own so a slow
receiver never holds up the bot's database work.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from llm.alerts.models import Alert, AlertTarget
from llm.alerts.transports import TRANSPORTS, TransportError

log = logging.getLogger("llm.alerts")

FIRST_RETRY = 10.0  # seconds before the second try, doubling after each failure
MAX_RETRY = 600.0
MAX_ATTEMPTS = 8  # about 20 minutes of tries, then the alert has failed for good
# A claimed alert is taken again after this when the process sending it died mid-send
# (longer than any transport's timeout, so a live sender always records first).
LEASE = timedelta(minutes=2)
BATCH = 20


def backoff(attempts: int) -> float:
    """Seconds before the next try after `attempts` tries: 10, 20, 40... up to 10 minutes."""
    return float(min(FIRST_RETRY * 2 ** min(attempts - 1, 16), MAX_RETRY))


def claim_due(now: datetime, limit: int = BATCH) -> list[Alert]:
    """Take the pending alerts that are due, each for this process alone."""
    due = Alert.objects.filter(status=Alert.Status.PENDING, next_try__lte=now).order_by("next_try", "pk")
    claimed = []
    for pk, attempts in due.values_list("pk", "attempts")[:limit]:
        # A conditional UPDATE: only the process that still sees the row due and untouched
        # takes it. Another process that got there first has moved its attempts on.
        taken = Alert.objects.filter(
            pk=pk, status=Alert.Status.PENDING, attempts=attempts, next_try__lte=now
        ).update(attempts=attempts + 1, next_try=now + LEASE)
        if taken:
            claimed.append(pk)
    return list(Alert.objects.filter(pk__in=claimed).select_related("target").order_by("pk"))


def deliver(alert: Alert) -> TransportError | None:
    """Send one alert (no database work: the loop runs this in another thread); None when sent."""
    target = alert.target
    transport = TRANSPORTS.get(target.kind)
    if transport is None:
        return TransportError(f"unknown target kind {target.kind!r}", retry=False)
    try:
        transport(target).send(alert)
    except TransportError as error:
        return error
    except Exception as exc:
        # A transport bug or a mail setting Django cannot use: recorded on the alert like
        # any failure, never with a traceback that could carry the URL.
        return TransportError.from_exception(exc, target.url)
    return None


def record(alert: Alert, failure: TransportError | None, now: datetime, *, retry: bool = True) -> None:
    """Sent, tried again later (capped exponential backoff, or what a 429 asked), or failed for good."""
    name = alert.target.name
    if failure is None:
        Alert.objects.filter(pk=alert.pk).update(status=Alert.Status.SENT, sent=now)
        log.info("alert %s sent to %s", alert.event, name)
        return
    if retry and failure.retry and alert.attempts < MAX_ATTEMPTS:
        wait = backoff(alert.attempts)
        if failure.retry_after is not None:
            wait = min(max(failure.retry_after, 1.0), MAX_RETRY)
        Alert.objects.filter(pk=alert.pk).update(
            next_try=now + timedelta(seconds=wait), last_error=failure.reason
        )
        log.warning(
            "alert %s to %s not sent (%s); trying again in %.0f s", alert.event, name, failure.short, wait
        )
        return
    Alert.objects.filter(pk=alert.pk).update(status=Alert.Status.FAILED, last_error=failure.reason)
    log.warning(
        "alert %s to %s failed after %d attempt(s) (%s)", alert.event, name, alert.attempts, failure.short
    )


def send_due(now: datetime) -> int:
    """Claim, send and record the due alerts; returns how many were tried."""
    alerts = claim_due(now)
    for alert in alerts:
        record(alert, deliver(alert), now)
    return len(alerts)


def send_test(target: AlertTarget, now: datetime | None = None) -> TransportError | None:
    """Send a test alert to `target` at once and record it; None when it went out.

    Not retried: the person who asked sees the result now and can ask again.
    """
    now = now or timezone.now()
    alert = Alert.objects.create(
        created=now,
        target=target,
        event=Alert.Event.TEST,
        key=f"test:{uuid.uuid4().hex}",
        subject=_("Test alert from %(bot)s") % {"bot": settings.BOT_NAME},
        body=_("Alerts reach this target (%(name)s).") % {"name": target.name},
        # Claimed from the start: no loop may send it as well.
        attempts=1,
        next_try=now + LEASE,
    )
    failure = deliver(alert)
    record(alert, failure, timezone.now(), retry=False)
    return failure
