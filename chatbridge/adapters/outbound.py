"""Outbound replies: one rate-limited, bounded queue per chat channel.

Platforms punish bursts (Twitch: 20 messages per 30 s per channel, 100 where the bot
is moderator, with a lockout after a breach). Each channel gets one queue and one
sender task while it has something to send. When replies pile up faster than the limit
lets them out, the oldest pending ones are dropped and counted: an answer a minute late
is noise in chat. An outbox with nothing to send closes after `idle_close` seconds; its
rate window (a few timestamps) outlives it, up to `max_windows` channels, least recently
used first, so a bot in 100,000 channels keeps only the talkative ones in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chatbridge.clock import Clock
from chatbridge.config import RateLimit
from chatbridge.cooldowns import Ticket
from serdabot.tasks import cancel_and_wait

log = logging.getLogger("chatbridge.outbound")

# An outbox with nothing to send closes after this long (its rate window is kept apart).
IDLE_CLOSE = 0.5
# Rate windows kept for channels without an open outbox. A window forgotten early could let
# one burst through in a channel the bot answered within the last window: only when it
# answers in more channels than this within one window (30 s on Twitch).
MAX_WINDOWS = 2_000


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

    def empty(self, now: float, limit: RateLimit) -> bool:
        """No send within the window any more: forgetting this window forgets nothing."""
        return not self._stamps or self._stamps[-1] + limit.window <= now


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
        idle_close: float = IDLE_CLOSE,
        window: SlidingWindow | None = None,
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
        self._window = window if window is not None else SlidingWindow()
        self._sending = False
        self._idle = asyncio.Event()  # set while nothing is pending or being sent
        self._idle.set()
        self.idle_close = idle_close
        self.sent = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def busy(self) -> bool:
        return bool(self._pending) or self._sending

    def drop_all(self, reason: str) -> int:
        """Drop (and count) what is still queued; how many."""
        left = len(self._pending)
        while self._pending:
            self._drop(self._pending.popleft(), reason)
        return left

    def put(self, message: Outgoing) -> None:
        self._pending.append(message)
        self._idle.clear()
        while len(self._pending) > max(self._backlog(), 1):
            self._drop(self._pending.popleft(), "backlog full")
        self._wake.set()

    async def run(self) -> None:
        """Send until cancelled, or until idle for `idle_close` with an empty rate window."""
        while True:
            if not self._pending:
                self._idle.set()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.idle_close):
                        await self._wake.wait()
                if not self._pending:
                    return  # Outbound forgets this box; the next reply opens a new one
                continue
            delay = self._window.delay(self._clock.now(), self._rate())
            if delay > 0:
                # Wait here, not with a message in hand: the backlog bound keeps applying.
                await self._nap(delay)
                continue
            self._sending = True
            message = self._pending.popleft()
            try:
                await self._deliver(message)
            except asyncio.CancelledError:
                # Stopped with it in hand (a send under way, a 429 back-off of up to a minute):
                # back in the queue, so close() counts it as not sent and its cooldown
                # reservation ends with the others, not at the reservation's timeout.
                self._pending.appendleft(message)
                raise
            finally:
                self._sending = False

    async def wait_idle(self) -> None:
        while self.busy:
            self._idle.clear()
            await self._idle.wait()

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
        idle_close: float = IDLE_CLOSE,
        max_windows: int = MAX_WINDOWS,
    ) -> None:
        self.idle_close = idle_close
        self._send = send
        self._rate = rate
        self._backlog = backlog
        self._clock = clock
        self._on_sent = on_sent
        self._on_dropped = on_dropped
        self._boxes: dict[str, ChannelOutbox] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._windows: OrderedDict[str, SlidingWindow] = OrderedDict()
        self.max_windows = max_windows

    def __len__(self) -> int:
        return len(self._boxes)

    @property
    def windows(self) -> int:
        return len(self._windows)

    def _window(self, channel: str) -> SlidingWindow:
        window = self._windows.pop(channel, None) or SlidingWindow()
        self._windows[channel] = window  # most recently used last
        self._sweep(keep=channel)
        return window

    def _sweep(self, keep: str = "") -> None:
        """Least recently used first: forget windows that hold no send any more, or any past
        the cap. Windows of open outboxes are kept and passed over, so one busy channel
        never holds the cap off for every other."""
        now = self._clock.now()
        doomed: list[str] = []
        for channel, window in self._windows.items():
            if channel == keep or channel in self._boxes:
                continue
            over = len(self._windows) - len(doomed) > self.max_windows
            if not over and not window.empty(now, self._rate(channel)):
                break
            doomed.append(channel)
        for channel in doomed:
            del self._windows[channel]

    def box(self, channel: str) -> ChannelOutbox:
        box = self._boxes.get(channel)
        task = self._tasks.get(channel)
        if box is None or task is None or task.done():
            # A box whose task has returned (idle) is replaced, never written to.
            box = self._boxes[channel] = ChannelOutbox(
                channel,
                self._send,
                rate=lambda: self._rate(channel),
                backlog=lambda: self._backlog(channel),
                clock=self._clock,
                on_sent=self._on_sent,
                on_dropped=self._on_dropped,
                idle_close=self.idle_close,
                window=self._window(channel),
            )
            task = self._tasks[channel] = asyncio.create_task(box.run(), name=f"outbox-{channel}")
            task.add_done_callback(functools.partial(self._closed, channel, box))
        return box

    def _closed(self, channel: str, box: ChannelOutbox, task: asyncio.Task[None]) -> None:
        if self._boxes.get(channel) is box:
            del self._boxes[channel]
            del self._tasks[channel]
            self._sweep()

    def put(self, message: Outgoing) -> None:
        self.box(message.channel).put(message)

    @property
    def queued(self) -> int:
        return sum(len(box) for box in self._boxes.values())

    async def drain(self, until: float) -> int:
        """Send what the rate limits allow until the loop time `until`; the number left queued."""
        busy = [box.wait_idle() for box in self._boxes.values() if box.busy]
        if busy:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(until - loop.time(), 0.0)):
                    await asyncio.gather(*busy)
        return self.queued

    async def close(self) -> int:
        """Stop every sender; what was still queued is dropped, counted, and logged in one line."""
        boxes, tasks = list(self._boxes.values()), list(self._tasks.values())
        await cancel_and_wait(tasks)
        left = sum(box.drop_all("shutting down") for box in boxes)
        if left:
            log.warning(
                "%d queued replies not sent: the bot stopped before the rate limit let them out", left
            )
        self._tasks.clear()
        self._boxes.clear()
        return left
