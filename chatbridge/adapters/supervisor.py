"""Keep one adapter running: restart it with capped exponential backoff, stop on a fatal error.

Each adapter runs under its own supervisor, so Twitch failing never stops Discord
(and the other way round). A fatal error (bad token, missing scope) is reported
once and not retried: the streamer has to fix a setting and restart anyway.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from chatbridge.adapters.errors import AdapterFatal, describe
from chatbridge.adapters.status import AdapterStatus, State
from serdabot.tasks import CLEANUP_WITHIN, cancel_and_wait, finish_shielded

log = logging.getLogger("chatbridge.adapters")


class Supervised(Protocol):
    platform: str
    status: AdapterStatus

    async def run(self) -> None: ...

    def secrets(self) -> tuple[str, ...]: ...


class Supervisor:
    def __init__(
        self,
        adapter: Supervised,
        *,
        first_delay: float = 1.0,
        max_delay: float = 300.0,
        healthy_after: float = 120.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        flush_every: float = 5.0,
    ) -> None:
        self.adapter = adapter
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.healthy_after = healthy_after
        self._sleep = sleep
        self._monotonic = monotonic
        self.flush_every = flush_every
        self.failures = 0

    def delay(self) -> float:
        """1, 2, 4... seconds up to the cap, with jitter so two adapters do not retry in step."""
        base = min(self.first_delay * 2 ** max(self.failures - 1, 0), self.max_delay)
        return base * random.uniform(0.8, 1.0)

    async def run(self) -> None:
        adapter, status = self.adapter, self.adapter.status
        flusher = asyncio.create_task(
            status.keep_flushed(self.flush_every), name=f"status-{adapter.platform}"
        )
        try:
            await self._loop()
        finally:
            # A stopping supervisor may be cancelled again (serdabot/tasks.py): the stopped
            # state and the flusher's end must not be cut short by it.
            await finish_shielded(self._stopped(flusher), within=CLEANUP_WITHIN)

    async def _stopped(self, flusher: asyncio.Task[None]) -> None:
        await cancel_and_wait([flusher])
        if self.adapter.status.state != State.FAILED:
            await self.adapter.status.set_state(State.STOPPED)

    async def _loop(self) -> None:
        adapter, status = self.adapter, self.adapter.status
        while True:
            started = self._monotonic()
            try:
                await adapter.run()
                raise ConnectionError("the adapter stopped on its own")
            except asyncio.CancelledError:
                raise
            except AdapterFatal as exc:
                message = describe(exc, adapter.secrets()).removeprefix("AdapterFatal: ")
                log.error("%s adapter stopped: %s", adapter.platform.capitalize(), message)
                await status.set_state(State.FAILED, message)
                return
            except Exception as exc:
                if self._monotonic() - started >= self.healthy_after:
                    self.failures = 0  # it ran fine for a while: start the backoff over
                self.failures += 1
                error = describe(exc, adapter.secrets())
                wait = self.delay()
                log.warning(
                    "%s adapter failed (%s); restarting in %.0f s (attempt %d)",
                    adapter.platform.capitalize(),
                    error,
                    wait,
                    self.failures,
                )
                await status.set_state(State.RECONNECTING, error)
                await self._sleep(wait)
