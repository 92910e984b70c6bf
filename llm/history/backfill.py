"""Roll-ups and incidents for history recorded before they existed, once, when the bot starts.

An install upgraded to this version has months of probes, calls and state changes but
no roll-ups, incidents or absences: the year view would look empty and every tier
"No data yet". `runbot` calls `backfill_if_needed()` once after the database answers.
It does nothing when any roll-up or tier status exists already (the writer keeps them
from then on); `manage.py rebuildrollups` redoes it on demand.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from django.db import connection

from llm.history import periods, rollups
from llm.models import CascadeCall, Probe, Rollup, TierEvent, TierStatus

log = logging.getLogger("llm.history")


BACKFILL_LOCK = 0x5E1DA1E8


def backfill_if_needed() -> bool:
    """Build what is missing from the raw rows; True when something was built.

    Never raises: a failure is logged and the bot starts anyway (`rebuildrollups` can redo it).
    """
    try:
        with one_process_at_a_time():
            return _backfill()
    except Exception:
        log.exception("history: building roll-ups and incidents from earlier rows failed")
        return False


@contextlib.contextmanager
def one_process_at_a_time() -> Iterator[None]:
    """The adapters and the workers start together on PostgreSQL: one builds, the others then
    find it built (a session lock: the rebuilds keep their own short write transactions).

    On SQLite, the one-process default, nothing is held: a write lock held through a minute
    of reading would make every other writer of the file fail with "database is locked".
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [BACKFILL_LOCK])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [BACKFILL_LOCK])


def _backfill() -> bool:
    built = False
    if not TierStatus._default_manager.exists() and TierEvent._default_manager.exists():
        found = periods.rebuild()
        log.info(
            "history: %d incidents and %d absences built from %d earlier state changes",
            found["incidents"],
            found["absences"],
            found["events"],
        )
        built = True
    if not Rollup._default_manager.exists() and (
        Probe._default_manager.exists() or CascadeCall._default_manager.exists()
    ):
        log.info("history: building roll-ups from the earlier probes and calls (once; can take a minute)")
        began = time.monotonic()
        counts = rollups.rebuild()
        log.info(
            "history: %d roll-ups built from %d probes and %d calls in %.0f s",
            counts["rollups"],
            counts["probes"],
            counts["calls"],
            time.monotonic() - began,
        )
        built = True
    return built
