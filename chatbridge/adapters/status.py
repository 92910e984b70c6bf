"""An adapter's state and counters: kept in memory, written to the database in the background.

The hot path only bumps integers; the dashboard reads `AdapterState` rows.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.db import DatabaseError
from django.utils import timezone

from chatbridge.models import AdapterState
from serdabot.database import database_label, reconnecting
from serdabot.outage import Outage
from serdabot.tasks import CLEANUP_WITHIN, finish_shielded

log = logging.getLogger("chatbridge.adapters")

State = AdapterState.State


class AdapterStatus:
    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.state: str = State.STOPPED
        self.last_error = ""
        self.messages_in = 0
        self.messages_out = 0
        self.replies_dropped = 0
        self.cooldown_hits = 0
        self.started = timezone.now()
        self._dirty = True
        self._outage: Outage | None = None

    @property
    def outage(self) -> Outage:
        # Made on first use: the database's name comes from settings read after import.
        if self._outage is None:
            self._outage = Outage(f"{self.platform} adapter state", database_label(), log)
        return self._outage

    def count_in(self) -> None:
        self.messages_in += 1
        self._dirty = True

    def count_out(self) -> None:
        self.messages_out += 1
        self._dirty = True

    def count_dropped(self) -> None:
        self.replies_dropped += 1
        self._dirty = True

    def count_cooldown(self) -> None:
        self.cooldown_hits += 1
        self._dirty = True

    async def set_state(self, state: str, error: str | None = None) -> None:
        """Record a state change at once (rare, unlike counters)."""
        changed = state != self.state or (error is not None and error != self.last_error)
        self.state = state
        if error is not None:
            self.last_error = error[:500]
        self._dirty = True
        if changed:
            await self.flush()

    def values(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "last_error": self.last_error,
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "replies_dropped": self.replies_dropped,
            "cooldown_hits": self.cooldown_hits,
            "started": self.started,
            "updated": timezone.now(),
        }

    async def flush(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        try:
            await sync_to_async(self._write)(self.values())
        except DatabaseError as exc:
            self._dirty = True  # try again next time; the bot keeps answering meanwhile
            self.outage.failed(exc)  # one line per outage, not one per flush
        else:
            self.outage.recovered()

    async def keep_flushed(self, every: float = 5.0) -> None:
        try:
            while True:
                await asyncio.sleep(every)
                await self.flush()
        finally:
            self._dirty = True
            await finish_shielded(self.flush(), within=CLEANUP_WITHIN)

    def _write(self, values: dict[str, Any]) -> None:
        with reconnecting():
            AdapterState.objects.update_or_create(platform=self.platform, defaults=values)
