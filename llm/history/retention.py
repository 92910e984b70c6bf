"""History retention: rows older than HISTORY_RETENTION_DAYS are deleted in small batches.

Raw rows (probes, calls, state changes, boot detections) go after
HISTORY_RETENTION_DAYS. What a year's view reads (roll-ups, incidents, absences) is
small and kept for SUMMARY_DAYS. Boot detections are also capped at BOOT_KEEP rows:
every `chat` run adds one.

Batches keep each write transaction short, so the bot recording new rows into the
same SQLite file never waits long for the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import models
from django.db.models import Max
from django.utils import timezone

# Alerts are the streamer's record of incidents: kept as long as the incidents themselves.
from llm.alerts.models import AdapterOutage, Alert
from llm.history.scopes import CONSOLE_ROLES
from llm.models import (
    Absence,
    BootDetection,
    CascadeCall,
    Incident,
    Probe,
    Rollup,
    TierEvent,
)
from serdabot.database import reconnecting
from serdabot.outage import connection_errors, describe

log = logging.getLogger("llm.retention")

BATCH_SIZE = 5000
DAY = 24 * 3600.0
OUTAGE_RETRY = 600.0  # seconds before another try when the database was unreachable
HISTORY_MODELS: tuple[type[models.Model], ...] = (Probe, CascadeCall, TierEvent, BootDetection)
# Other apps' rows kept HISTORY_RETENTION_DAYS by their `created` time (chatbridge's held
# replies, which may hold chat text): they register here, so this app imports none of them.
KEPT_AS_HISTORY: list[type[models.Model]] = []


def keep_as_history(model: type[models.Model]) -> None:
    """Prune `model`'s rows older than HISTORY_RETENTION_DAYS with the history (by `created`)."""
    if model not in KEPT_AS_HISTORY:
        KEPT_AS_HISTORY.append(model)


# Enough for the dashboard's year window and the month before it.
SUMMARY_DAYS = 400
BOOT_KEEP = 1000


def retention_days() -> int:
    return int(settings.HISTORY_RETENTION_DAYS)


def _delete_before(
    model: type[models.Model],
    cutoff: datetime,
    keep: list[int],
    batch_size: int,
    *,
    field: str = "created",
) -> int:
    deleted = 0
    while True:
        ids = list(
            model._default_manager.filter(**{f"{field}__lt": cutoff})
            .exclude(pk__in=keep)
            .order_by(field)
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        count, _ = model._default_manager.filter(pk__in=ids).delete()
        deleted += count


def prune_history(
    days: int | None = None, *, now: datetime | None = None, batch_size: int = BATCH_SIZE
) -> dict[str, int]:
    """Delete history older than `days` (default: the setting); returns rows deleted per model."""
    days = retention_days() if days is None else days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    # Each tier's latest state change is kept, however old: it is the tier's current state.
    # Per scope: a console run's latest change must not stand in for the bot's. Not per role: an
    # old role's change kept forever would be where `rebuildrollups` starts the bot's history.
    events = TierEvent._default_manager
    latest_events: list[int] = []
    for rows in (events.filter(role__in=CONSOLE_ROLES), events.exclude(role__in=CONSOLE_ROLES)):
        latest_events += rows.values("tier").annotate(last=Max("pk")).values_list("last", flat=True)
    result = {}
    for model in (*HISTORY_MODELS, *KEPT_AS_HISTORY):
        keep = latest_events if model is TierEvent else []
        result[model._meta.model_name or model.__name__] = _delete_before(model, cutoff, keep, batch_size)
    boots = BootDetection._default_manager.order_by("-created", "-pk").values_list("created", flat=True)
    oldest_kept = boots[BOOT_KEEP - 1 : BOOT_KEEP].first()
    if oldest_kept is not None:
        result["bootdetection"] += _delete_before(BootDetection, oldest_kept, [], batch_size)
    summary_cutoff = (now or timezone.now()) - timedelta(days=max(days, SUMMARY_DAYS))
    result["rollup"] = _delete_before(Rollup, summary_cutoff, [], batch_size, field="start")
    result["alert"] = _delete_before(Alert, summary_cutoff, [], batch_size)
    for period in (Incident, Absence, AdapterOutage):
        # By their end: one still going on (no end) is the tier's present and stays.
        name = period._meta.model_name or period.__name__
        result[name] = _delete_before(period, summary_cutoff, [], batch_size, field="ended")
    return result


def _prune_reconnecting() -> dict[str, int]:
    with reconnecting():  # after an outage, the next day's (or retry's) prune reconnects
        return prune_history()


async def prune_daily(stop: asyncio.Event, *, interval: float = DAY) -> None:
    """Prune at once, then every `interval` seconds until `stop` is set. For `runbot`."""
    while not stop.is_set():
        wait = interval
        try:
            deleted = await sync_to_async(_prune_reconnecting)()
        except connection_errors() as exc:
            # An outage, not a bug: one line, and another try within the hour rather than
            # tomorrow (a worker started during an outage would otherwise skip a whole day).
            wait = min(interval, OUTAGE_RETRY)
            log.warning(
                "pruning the history: database unreachable (%s); trying again in %.0f s", describe(exc), wait
            )
        except Exception:
            log.exception("pruning the history failed; trying again in %.0f s", interval)
        else:
            if any(deleted.values()):
                log.info("Pruned history older than %d days: %s", retention_days(), deleted)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait)
