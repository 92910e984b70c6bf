"""Outbound replies: one rate-limited, bounded queue per chat channel.

Platforms punish bursts (Twitch: 20 messages per 30 s per channel, 100 where the bot
is moderator, with a lockout after a breach). Each channel gets one queue and one
sender task. When replies pile up faster than the limit lets them out, the oldest
pending ones are dropped and counted: an answer a minute late is noise in chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chatbridge.clock import Clock
from chatbridge.config import RateLimit
from chatbridge.cooldowns import Ticket

log = logging.getLogger("chatbridge.outbound")


@dataclass(frozen=True, slots=True)
class Outgoing:
    channel: str  # the channel key (Twitch login, Discord channel id)
    channel_id: str  # what the platform's send API wants
    text: str
    reply_to: str = ""  # platform message id to reply to
    ticket: Ticket | None = None  # the command whose cooldown starts once this is sent; None for notices


class RateLimited(Exception):
    """The platform said "too many requests": wait, then try again."""

    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__(f"rate limited (retry after {retry_after} s)")
        self.retry_after = retry_after


class Rejected(Exception):
    """The platform refused this message for good (duplicate, AutoMod, no permission...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Send = Callable[[Outgoing], Awaitable[None]]
OnSent = Callable[[Outgoing], None]
OnDropped = Callable[[Outgoing, str], None]


class SlidingWindow:
    """Timestamps of the last sends, to keep at most N in any window of W seconds."""

    def __init__(self) -> None:
        self._stamps: deque[float] = deque()

    def delay(self, now: float, limit: RateLimit) -> float:
        while self._stamps and self._stamps[0] + limit.window <= now:
            self._stamps.popleft()
        excess = len(self._stamps) - limit.messages
        if excess < 0:
            return 0.0
        # The send that must leave the window before one more fits.
        return self._stamps[excess] + limit.window - now

    def record(self, now: float) -> None:
        self._stamps.append(now)


class ChannelOutbox:
    def __init__(
        self,
        channel: str,
        send: Send,
        *,
        rate: Callable[[], RateLimit],
        backlog: Callable[[], int],
        clock: Clock,
        on_sent: OnSent,
        on_dropped: OnDropped,
        max_attempts: int = 3,
        backoff: float = 2.0,
        max_backoff: float = 60.0,
    ) -> None:
        self.channel = channel
        self._send = send
        self._rate = rate
        self._backlog = backlog
        self._clock = clock
        self._on_sent = on_sent
        self._on_dropped = on_dropped
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._pending: deque[Outgoing] = deque()
        self._wake = asyncio.Event()
        self._window = SlidingWindow()
        self.sent = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._pending)

    def put(self, message: Outgoing) -> None:
        self._pending.append(message)
        while len(self._pending) > max(self._backlog(), 1):
            self._drop(self._pending.popleft(), "backlog full")
        self._wake.set()

    async def run(self) -> None:
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            delay = self._window.delay(self._clock.now(), self._rate())
            if delay > 0:
                # Wait here, not with a message in hand: the backlog bound keeps applying.
                await self._nap(delay)
                continue
            await self._deliver(self._pending.popleft())

    async def _nap(self, delay: float) -> None:
        """Sleep until `delay` has passed or a new message comes in (the limit may have changed)."""
        self._wake.clear()
        sleeper = asyncio.ensure_future(self._clock.sleep(delay))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait([sleeper, waker], return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    async def _deliver(self, message: Outgoing) -> None:
        for attempt in range(1, self.max_attempts + 1):
            self._window.record(self._clock.now())
            try:
                await self._send(message)
            except RateLimited as exc:
                wait = min(exc.retry_after or self.backoff * 2 ** (attempt - 1), self.max_backoff)
                log.warning("%s: rate limited by the platform, backing off %.1f s", self.channel, wait)
                await self._clock.sleep(wait)
                continue
            except Rejected as exc:
                log.warning("%s: reply dropped by the platform: %s", self.channel, exc.reason)
                self._drop(message, exc.reason)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: reply not sent (%s)", self.channel, type(exc).__name__)
                self._drop(message, type(exc).__name__)
                return
            self.sent += 1
            self._on_sent(message)
            return
        self._drop(message, "still rate limited")

    def _drop(self, message: Outgoing, reason: str) -> None:
        self.dropped += 1
        self._on_dropped(message, reason)


class Outbound:
    """The outboxes of one adapter, created on first use, one sender task each."""

    def __init__(
        self,
        send: Send,
        *,
        rate: Callable[[str], RateLimit],
        backlog: Callable[[str], int],
        clock: Clock,
        on_sent: OnSent,
        on_dropped: OnDropped,
    ) -> None:
        self._send = send
        self._rate = rate
        self._backlog = backlog
        self._clock = clock
        self._on_sent = on_sent
        self._on_dropped = on_dropped
        self._boxes: dict[str, ChannelOutbox] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def box(self, channel: str) -> ChannelOutbox:
        box = self._boxes.get(channel)
        if box is None:
            box = self._boxes[channel] = ChannelOutbox(
                channel,
                self._send,
                rate=lambda: self._rate(channel),
                backlog=lambda: self._backlog(channel),
                clock=self._clock,
                on_sent=self._on_sent,
                on_dropped=self._on_dropped,
            )
            self._tasks[channel] = asyncio.create_task(box.run(), name=f"outbox-{channel}")
        return box

    def put(self, message: Outgoing) -> None:
        self.box(message.channel).put(message)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._boxes.clear()
