"""Channel-layer group memberships kept for as long as a process runs.

channels forgets a group member `group_expiry` seconds after it joined (the in-memory
layer and channels_redis alike), and a restarted Redis forgets every group at once. A
listener that joins once goes deaf a day later, or after the first Redis restart, and
nothing tells it. A `Membership` joins again periodically, well within the expiry, and
as soon as the layer answers after its owner's receive loop reports a failure:

    membership = Membership(layer, GROUP, channel, Outage("change listener", "Redis", log))
    await membership.join()
    membership.start()
    try:
        while True:
            try:
                message = await layer.receive(channel)
            except membership.errors as exc:
                await asyncio.sleep(membership.lost(exc))
                continue
            ...
    finally:
        await membership.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from serdabot.outage import Outage, being_cancelled, connection_errors
from serdabot.tasks import cancel_and_wait

log = logging.getLogger("serdabot.groups")

# channels' own default group expiry, for a layer that does not say.
DEFAULT_GROUP_EXPIRY = 86400.0
# Rejoining costs one small Redis write; more often than this buys nothing.
LONGEST_REFRESH = 300.0

Callback = Callable[[], Awaitable[None]]


def refresh_interval(layer: Any) -> float:
    """How often to rejoin: a quarter of the layer's group expiry, at most every 5 minutes."""
    expiry = float(getattr(layer, "group_expiry", None) or DEFAULT_GROUP_EXPIRY)
    return min(expiry / 4, LONGEST_REFRESH)


def layer_name(layer: Any) -> str:
    """What the log lines call the layer: only channels_redis can be unreachable."""
    return "Redis" if type(layer).__module__.startswith("channels_redis") else "the channel layer"


class Membership:
    """One channel's membership of one group, refreshed until `stop()`.

    `deaf` is true from the first failed join (or reported receive failure) until a join
    succeeds again. `on_lost` and `on_back` run once at each of those two moments, in the
    keeper's task; `join()` itself calls neither, so a caller that joins before it can
    talk (a websocket before `accept`) decides what to say about a first failure.
    """

    def __init__(
        self,
        layer: Any,
        group: str,
        channel: str,
        outage: Outage,
        *,
        every: float | None = None,
        on_lost: Callback | None = None,
        on_back: Callback | None = None,
    ) -> None:
        self.layer, self.group, self.channel = layer, group, channel
        self.outage = outage
        self.every = refresh_interval(layer) if every is None else every
        self.on_lost, self.on_back = on_lost, on_back
        self.errors = connection_errors()
        self.deaf = False
        self.joins = 0  # successful ones, refreshes included
        self._retry_in = 0.0
        self._suspect = False  # a receive failed: the layer may have forgotten the group
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def join(self) -> bool:
        """Join the group, or refresh the membership, now. False if the layer failed."""
        try:
            await self.layer.group_add(self.group, self.channel)
        except self.errors as exc:
            self._retry_in = self.outage.failed(exc)
            self.deaf = True
            return False
        except Exception:
            # Not an outage but a bug: a traceback once, then retries as for an outage.
            if not self.deaf:
                log.exception("%s: joining %s failed", self.outage.who, self.group)
            self._retry_in = self.outage.cap
            self.deaf = True
            return False
        self.joins += 1
        self._retry_in = self.every
        return True

    def lost(self, exc: BaseException) -> float:
        """Report a failed receive on the channel: the group is joined again as soon as
        the layer answers. Returns how long to wait before receiving again.

        A receive cancelled under redis-py comes out as its TimeoutError: that is the
        loop being stopped, not an outage, and it stops here."""
        if being_cancelled():
            raise asyncio.CancelledError from exc
        self._suspect = True
        self._wake.set()
        return self.outage.failed(exc)

    async def keep(self) -> None:
        """Rejoin every `every` seconds, with capped backoff while the layer fails, until cancelled."""
        while True:
            await self._sleep(self._retry_in)
            if self._suspect and not self.deaf:
                self.deaf = True
                await self._call(self.on_lost)
            self._suspect = False
            was_deaf = self.deaf
            if await self.join():
                if was_deaf:
                    self.deaf = False
                    self.outage.recovered()
                    await self._call(self.on_back)
            elif not was_deaf:
                await self._call(self.on_lost)

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self.keep(), name=f"membership:{self.group}")
        return self._task

    async def stop(self) -> None:
        """Stop refreshing and leave the group. Never raises: a lost layer forgets members by itself."""
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
        if self.joins:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.layer.group_discard(self.group, self.channel))

    async def _sleep(self, seconds: float) -> None:
        """Wait `seconds`, or less if a receive failure is reported meanwhile."""
        if seconds > 0 and not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def _call(self, callback: Callback | None) -> None:
        if callback is None:
            return
        try:
            await callback()
        except Exception:
            log.exception("%s: reacting to a change of membership of %s failed", self.outage.who, self.group)
