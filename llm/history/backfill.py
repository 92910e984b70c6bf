"""Roll-ups and incidents for history recorded before they existed, once, when the bot starts.

An install upgraded to this version has months of probes, calls and state changes but
no roll-ups, incidents or absences: the year view would look empty and every tier
"No data yet". `runbot` calls `backfill_if_needed()` once after the database answers.
It does nothing when any roll-up or tier status exists already (the writer keeps them
from then on); `manage.py rebuildrollups` redoes it on demand.
"""

from __future__ import annotations

import logging
import time

from llm.history import periods, rollups
from llm.models import CascadeCall, Probe, Rollup, TierEvent, TierStatus

log = logging.getLogger("llm.history")


def backfill_if_needed() -> bool:
    """Build what is missing from the raw rows; True when something was built."""
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
