"""Live switches: the LLM mode, a pause and the fallback mode, flipped in the admin.

One `LiveSwitches` row holds what the streamer chose; an empty choice follows the
environment (LLM_MODE, FALLBACK_MODE), which also gives every value while there is no
row. Each process keeps the row in memory (`live_switches`), so chat never reads the
database for it: the row is read again every SWITCH_POLL seconds while something in the
process watches it (the LLM service, an adapter's relay), and at once when another process
announces a change (serdabot.broadcast, "switches"). A database outage keeps the last
values, with one log line per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db import DatabaseError

from llm.cascade.config import FALLBACK_MODES, MODES, LLMConfig
from llm.models import LiveSwitches, TierEvent
from serdabot.database import database_label, reconnecting
from serdabot.outage import Outage
from serdabot.tasks import cancel_and_wait

log = logging.getLogger("llm.switches")

# Seconds between two reads of the row: how long a change takes to reach a process whose
# change notice was lost (no REDIS_URL across processes, Redis down).
SWITCH_POLL = 2.0

DISABLED = TierEvent.State.DISABLED.value
PAUSED = TierEvent.State.PAUSED.value


@dataclass(frozen=True, slots=True)
class Overrides:
    """The admin's row as last read: "" (and not paused) follows the environment."""

    llm_mode: str = ""
    paused: bool = False
    fallback_mode: str = ""

    @classmethod
    def from_row(cls, row: LiveSwitches | None) -> Overrides:
        if row is None:
            return cls()
        # A value the choices do not know (the table edited by hand) follows the environment
        # rather than stopping the bot.
        return cls(
            llm_mode=row.llm_mode if row.llm_mode in MODES else "",
            paused=bool(row.paused),
            fallback_mode=row.fallback_mode if row.fallback_mode in FALLBACK_MODES else "",
        )


@dataclass(frozen=True, slots=True)
class Switches:
    """What applies now: the environment's values under the admin's."""

    llm_mode: str  # auto, enabled or disabled
    paused: bool
    fallback_mode: str  # fun, silent or minimal
    mode_from_admin: bool  # llm_mode is the admin's choice, not LLM_MODE

    @property
    def off(self) -> str:
        """ "disabled" or "paused" while no model may be called, "" otherwise.

        Disabled wins over paused: unpausing would not bring the LLM back.
        """
        if self.llm_mode == "disabled":
            return DISABLED
        return PAUSED if self.paused else ""

    @property
    def why(self) -> str:
        """Why no model is called, in the words the history and the log use ("" when one is)."""
        if self.llm_mode == "disabled":
            return "switched off in the admin" if self.mode_from_admin else "LLM_MODE=disabled"
        return "paused from the admin" if self.paused else ""


def effective(config: LLMConfig, overrides: Overrides) -> Switches:
    return Switches(
        llm_mode=overrides.llm_mode or config.mode,
        paused=overrides.paused,
        fallback_mode=overrides.fallback_mode or config.fallback_mode,
        mode_from_admin=bool(overrides.llm_mode),
    )


def read_overrides() -> Overrides:
    """The row as it is now (sync: run it in a thread); no row yet: the environment's values."""
    with reconnecting():
        return Overrides.from_row(LiveSwitches.objects.order_by("pk").first())


# Called on the event loop with the new row, once per change.
Listener = Callable[[Overrides], Awaitable[None]]


class SwitchWatcher:
    def __init__(self, *, every: float = SWITCH_POLL, read: Callable[[], Overrides] = read_overrides) -> None:
        self.every = every
        self._read = read
        # Replaced whole, never changed in place: readers on any thread see one row or the next.
        self.current = Overrides()
        self.listeners: list[Listener] = []
        self._users = 0
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatched = self.current
        self._outage: Outage | None = None
        self._failing = False  # a bug, not an outage: one traceback until a read works again

    @property
    def outage(self) -> Outage:
        # Named on first use: the test runner renames the database after settings load.
        if self._outage is None:
            self._outage = Outage("live switches", database_label(), log)
        return self._outage

    def fallback_mode(self, default: str) -> str:
        """The fallback mode now: the admin's choice, else `default` (FALLBACK_MODE). Memory only."""
        return self.current.fallback_mode or default

    # -- reading the row ----------------------------------------------------------------

    def refresh(self) -> None:
        """Read the row now, from a thread (the change listener's): raises what the database raises."""
        self.current = self._read()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            # The watcher's loop applies it: listeners run there, not in this thread.
            with contextlib.suppress(RuntimeError):  # that loop has just closed
                loop.call_soon_threadsafe(wake.set)

    async def read(self) -> bool:
        """Read the row now; False (and the last values kept) when the database cannot be read."""
        try:
            overrides = await sync_to_async(self._read)()
        except DatabaseError as exc:
            self.outage.failed(exc)
            return False
        except Exception:
            if not self._failing:
                log.exception("live switches: reading them failed; the last ones stay in force")
            self._failing = True
            return False
        self._failing = False
        self.outage.recovered()
        self.current = overrides
        return True

    # -- watching -----------------------------------------------------------------------

    def start(self) -> None:
        """Watch the row from the running loop until as many stop() calls (the service and the
        relays of one process share this watcher)."""
        loop = asyncio.get_running_loop()
        if self._task is not None and self._task.get_loop() is not loop:
            # Left watching from a loop that ended without stopping it (a script's asyncio.run).
            self._task, self._users = None, 0
        self._users += 1
        if self._task is None:
            self._loop, self._wake = loop, asyncio.Event()
            self._dispatched = self.current
            self._task = loop.create_task(self._run(), name="live-switches")

    async def stop(self) -> None:
        if self._users == 0:
            return
        self._users -= 1
        if self._users or self._task is None:
            return
        # Detached before the await: a stop interrupted by its caller's cancellation leaves
        # no task that a later start() would count on.
        task, self._task, self._loop, self._wake = self._task, None, None, None
        await cancel_and_wait([task])

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        self.start()
        try:
            yield
        finally:
            await self.stop()

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        await self.read()
        while True:
            await self._dispatch()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.every):
                    await wake.wait()
            if wake.is_set():
                # A change notice: its thread has read the row already.
                wake.clear()
            else:
                await self.read()

    async def _dispatch(self) -> None:
        current = self.current
        if current == self._dispatched:
            return
        self._dispatched = current
        log.info(
            "live switches now: llm_mode=%s paused=%s fallback_mode=%s",
            current.llm_mode or "(LLM_MODE)",
            "yes" if current.paused else "no",
            current.fallback_mode or "(FALLBACK_MODE)",
        )
        for listener in list(self.listeners):
            try:
                await listener(current)
            except Exception:  # one listener's bug must not keep the change from the others
                log.exception("live switches: applying a change failed")


# One per process, shared by the LLM service, the handler and the adapters' relays.
live_switches = SwitchWatcher()
