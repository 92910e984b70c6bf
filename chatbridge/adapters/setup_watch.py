"""Run each chat platform's adapter as soon as it is configured, and again when its setup changes.

A fresh install has nothing configured; the streamer connects Twitch (or Discord) in
the browser and the setup page says so ("twitch-setup", "discord-setup" on the change
broadcast). The watch then starts the adapter, without restarting the bot. It also
restarts one whose application, bot account or token changed, starts again one that
stopped on a fatal error once the page stored something new (a reconnected bot account),
and stops one whose settings were removed. A periodic look catches a missed notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from functools import partial

from asgiref.sync import sync_to_async

from chatbridge.adapters.registry import (
    PLATFORMS,
    Adapter,
    PlatformSetup,
    build_adapter,
    not_configured_message,
    read_setups,
)
from chatbridge.adapters.supervisor import Supervisor
from serdabot.outage import describe
from serdabot.tasks import cancel_and_wait, finish_shielded

log = logging.getLogger("serdabot.bot")

# What each platform's setup page broadcasts after saving (serdabot.broadcast.notify_changed).
NOTICES = {"twitch": "twitch-setup", "discord": "discord-setup"}
# Seconds between two looks without a notice (one read of two or three rows).
LOOK_EVERY = 30.0
# Seconds the adapters get to close when the watch stops (their relays drained before, in shut_down).
STOP_WITHIN = 15.0


@dataclass
class Running:
    adapter: Adapter
    task: asyncio.Task[None]  # its supervisor's
    setup: PlatformSetup

    @property
    def failed(self) -> bool:
        # A supervisor ends on its own only after a fatal error (a bad token, a missing scope).
        return self.task.done()


class SetupWatch:
    def __init__(
        self, platforms: Iterable[str], *, setup_url: str = "", look_every: float = LOOK_EVERY
    ) -> None:
        self.platforms = {p for p in platforms if p in PLATFORMS}
        self.setup_url = setup_url  # the bot's web server, for the start-up message
        self.look_every = look_every
        self.running: dict[str, Running] = {}
        self._noticed: set[str] = set()  # platforms whose setup page saved something
        self._woken = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._said: dict[str, str] = {}  # platform -> the problem last logged, said once
        self._looked = False

    def adapters(self) -> list[Adapter]:
        return [r.adapter for r in self.running.values()]

    def refreshers(self) -> dict[str, Callable[[], None]]:
        """For the change listener (serdabot.broadcast.listen), which calls them in a thread."""
        return {notice: partial(self.notify, platform) for platform, notice in NOTICES.items()}

    def notify(self, platform: str) -> None:
        """`platform`'s setup page saved something: look now. Callable from any thread."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to start any more
                self._loop.call_soon_threadsafe(self._notice, platform)

    def _notice(self, platform: str) -> None:
        self._noticed.add(platform)
        self._woken.set()

    async def run(self) -> None:
        """Start what is configured, then follow the setup until cancelled (which stops the adapters)."""
        self._loop = asyncio.get_running_loop()
        try:
            await self._first_look()
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.look_every):
                        await self._woken.wait()
                self._woken.clear()
                noticed, self._noticed = self._noticed, set()
                try:
                    await self.look(noticed=noticed)
                except Exception as exc:
                    # The database is away, most likely: the adapters running go on, the next look retries.
                    log.warning("chat platform settings not read (%s); trying again later", describe(exc))
        finally:
            self._loop = None
            # Shielded: run_bot's cancellation is repeated, and the adapters' own cleanup (twitchio
            # closed, tokens saved, the "stopped" state row) must end before the process goes on
            # closing what they use.
            await finish_shielded(
                cancel_and_wait([r.task for r in self.running.values()]), within=STOP_WITHIN
            )

    async def _first_look(self) -> None:
        while True:
            try:
                await self.look()
                break
            except Exception as exc:
                log.warning("chat platform settings not read (%s); trying again", describe(exc))
                await asyncio.sleep(min(self.look_every, 5.0))
        if self.platforms and not self.running:
            log.warning(not_configured_message(self.platforms, self.setup_url))

    async def look(self, *, noticed: Collection[str] = ()) -> None:
        """Bring the adapters in line with the stored settings. `noticed`: platforms whose
        setup page saved something: one stopped by a fatal error is given another start."""
        setups = await sync_to_async(read_setups)(self.platforms)
        for platform, setup in setups.items():
            current = self.running.get(platform)
            if not setup.configured:
                self._say(platform, setup.problem)
                if current is not None:
                    log.info("%s settings removed: adapter stopped", platform.capitalize())
                    del self.running[platform]
                    await cancel_and_wait([current.task])
                continue
            self._said.pop(platform, None)
            if current is None:
                if self._looked:  # at start, the adapter's own lines say enough
                    log.info("%s is configured: starting its adapter", platform.capitalize())
                await self._start(platform, setup)
            elif current.setup.revision != setup.revision:
                # The revision covers the credentials (registry.read_setup): another application,
                # account or token, or the bot account connected again from the setup page.
                why = (
                    "credentials changed"
                    if current.setup.credentials != setup.credentials
                    else "connected again"
                )
                log.info("%s %s: restarting its adapter", platform.capitalize(), why)
                await cancel_and_wait([current.task])
                await self._start(platform, setup)
            elif current.failed and platform in noticed:
                log.info("%s settings saved again: starting its adapter again", platform.capitalize())
                await self._start(platform, setup)
        self._looked = True

    def _say(self, platform: str, problem: str) -> None:
        if problem and self._said.get(platform) != problem:
            log.warning("%s not started: %s", platform.capitalize(), problem)
        self._said[platform] = problem

    async def _start(self, platform: str, setup: PlatformSetup) -> None:
        adapter = await sync_to_async(build_adapter)(platform)
        # Under its own supervisor: one platform failing never stops another.
        task = asyncio.create_task(Supervisor(adapter).run(), name=f"adapter-{platform}")
        self.running[platform] = Running(adapter, task, setup)
