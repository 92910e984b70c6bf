"""The per-channel outbound queue: rate limit, bounded backlog, 429 backoff, rejections.

The platform's send is the network edge here: a small recorder stands in for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from chatbridge.adapters.outbound import (
    ChannelOutbox,
    Outbound,
    Outgoing,
    RateLimited,
    Rejected,
    SlidingWindow,
)
from chatbridge.config import RateLimit
from tests.adapter_support import eventually
from tests.fakes.clock import ManualClock


class Platform:
    """Records what was sent, at which (manual) time; raises what the script says."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, str]] = []
        self.attempts = 0
        self.script: list[Exception] = []

    async def send(self, message: Outgoing) -> None:
        self.attempts += 1
        if self.script:
            raise self.script.pop(0)
        self.sent.append((self.clock.now(), message.text))


TWITCH = RateLimit(20, 30.0)


class Outbox:
    def __init__(self, limit: RateLimit = TWITCH, backlog: int = 10) -> None:
        self.clock = ManualClock()
        self.platform = Platform(self.clock)
        self.limit = limit
        self.backlog = backlog
        self.delivered: list[str] = []
        self.dropped: list[tuple[str, str]] = []
        self.box = ChannelOutbox(
            "streamer",
            self.platform.send,
            rate=lambda: self.limit,
            backlog=lambda: self.backlog,
            clock=self.clock,
            on_sent=lambda m: self.delivered.append(m.text),
            on_dropped=lambda m, reason: self.dropped.append((m.text, reason)),
        )

    def put(self, *texts: str) -> None:
        for text in texts:
            self.box.put(Outgoing("streamer", "1971641", text))


@pytest.fixture
async def outbox() -> AsyncIterator[Outbox]:
    box = Outbox()
    task = asyncio.create_task(box.box.run())
    yield box
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_it_never_sends_more_than_the_limit_in_any_window(outbox: Outbox) -> None:
    outbox.backlog = 100
    outbox.put(*(f"m{n}" for n in range(45)))
    await eventually(lambda: len(outbox.platform.sent) == 20 and outbox.clock.sleepers, what="a full window")
    outbox.clock.advance(30)
    await eventually(
        lambda: len(outbox.platform.sent) == 40 and outbox.clock.sleepers, what="the next window"
    )
    outbox.clock.advance(30)
    await eventually(lambda: len(outbox.platform.sent) == 45, what="the rest")

    stamps = [t for t, _ in outbox.platform.sent]
    assert all(sum(1 for t in stamps if start <= t < start + 30) <= 20 for start in stamps)
    assert [text for _, text in outbox.platform.sent] == [f"m{n}" for n in range(45)]  # in order


async def test_past_the_backlog_the_oldest_replies_are_dropped_and_counted(outbox: Outbox) -> None:
    outbox.put(*(f"m{n}" for n in range(10)))
    await eventually(lambda: len(outbox.platform.sent) == 10, what="ten sent")
    outbox.put(*(f"m{n}" for n in range(10, 20)))
    await eventually(lambda: len(outbox.platform.sent) == 20, what="a full window")
    outbox.put(*(f"late{n}" for n in range(15)))

    assert len(outbox.box) == 10
    assert outbox.box.dropped == 5
    assert outbox.dropped == [(f"late{n}", "backlog full") for n in range(5)]
    outbox.clock.advance(30)
    await eventually(lambda: len(outbox.box) == 0 and len(outbox.platform.sent) == 30, what="the backlog")
    assert [text for _, text in outbox.platform.sent[20:]] == [f"late{n}" for n in range(5, 15)]


async def test_a_higher_limit_applies_as_soon_as_it_is_known(outbox: Outbox) -> None:
    outbox.backlog = 200
    outbox.put(*(f"m{n}" for n in range(30)))
    await eventually(lambda: len(outbox.platform.sent) == 20 and outbox.clock.sleepers, what="a full window")
    outbox.limit = RateLimit(100, 30.0)  # the bot turned out to be a moderator
    outbox.put("m30")  # the next reply wakes the sender, which reads the new limit
    await eventually(lambda: len(outbox.platform.sent) == 31, what="the moderator's allowance")
    assert outbox.clock.now() == 1_000.0


async def test_a_429_backs_off_and_retries(outbox: Outbox) -> None:
    outbox.platform.script = [RateLimited(), RateLimited(retry_after=7)]
    outbox.put("patience")
    await eventually(
        lambda: outbox.platform.attempts == 1 and outbox.clock.sleepers, what="the first backoff"
    )
    outbox.clock.advance(2)
    await eventually(
        lambda: outbox.platform.attempts == 2 and outbox.clock.sleepers, what="the second backoff"
    )
    outbox.clock.advance(6.9)
    await asyncio.sleep(0.05)
    assert outbox.platform.attempts == 2  # Retry-After is honoured
    outbox.clock.advance(0.1)
    await eventually(lambda: outbox.delivered == ["patience"], what="the retry")


async def test_it_gives_up_after_repeated_429s(outbox: Outbox) -> None:
    outbox.platform.script = [RateLimited(1), RateLimited(1), RateLimited(1)]
    outbox.put("jamais")
    for attempt in (1, 2, 3):

        def backing_off(attempt: int = attempt) -> bool:
            return outbox.platform.attempts == attempt and outbox.clock.sleepers > 0

        await eventually(backing_off, what="a backoff")
        outbox.clock.advance(1)
    await eventually(lambda: outbox.dropped, what="the drop")
    assert outbox.dropped == [("jamais", "still rate limited")]


async def test_a_rejected_message_is_dropped_with_its_reason_and_the_next_goes_out(outbox: Outbox) -> None:
    outbox.platform.script = [Rejected("msg_duplicate: identical message")]
    outbox.put("doublon", "suivant")
    await eventually(lambda: outbox.delivered == ["suivant"], what="the next message")
    assert outbox.dropped == [("doublon", "msg_duplicate: identical message")]
    assert outbox.platform.attempts == 2


async def test_an_unexpected_error_drops_the_message_not_the_queue(outbox: Outbox) -> None:
    outbox.platform.script = [ConnectionResetError("peer")]
    outbox.put("perdu", "suivant")
    await eventually(lambda: outbox.delivered == ["suivant"], what="the next message")
    assert outbox.dropped == [("perdu", "ConnectionResetError")]


def test_the_sliding_window_waits_for_the_oldest_send_to_leave() -> None:
    window = SlidingWindow()
    limit = RateLimit(3, 30.0)
    for t in (0.0, 10.0, 20.0):
        assert window.delay(t, limit) == 0
        window.record(t)
    assert window.delay(25.0, limit) == 5.0
    assert window.delay(30.0, limit) == 0
    # A lower limit (the bot lost its moderator badge) counts the sends already made.
    window.record(30.0)
    assert window.delay(31.0, RateLimit(1, 30.0)) == 29.0


def outbound_for(clock: ManualClock, platform: Platform, *, idle_close: float) -> Outbound:
    return Outbound(
        platform.send,
        rate=lambda channel: RateLimit(1, 30.0),
        backlog=lambda channel: 10,
        clock=clock,
        on_sent=lambda m: None,
        on_dropped=lambda m, reason: None,
        idle_close=idle_close,
    )


async def test_idle_outboxes_close_and_their_rate_windows_stay_bounded() -> None:
    clock = ManualClock()
    platform = Platform(clock)
    outbound = outbound_for(clock, platform, idle_close=0.05)
    outbound.max_windows = 30
    try:
        for n in range(50):
            outbound.put(Outgoing(f"channel{n}", str(n), f"m{n}"))
        await eventually(lambda: len(platform.sent) == 50, what="one reply per channel")
        await eventually(lambda: len(outbound) == 0, what="the idle outboxes to close")
        assert outbound.windows <= 31  # the cap, not one per channel ever seen
        # A channel still within its window keeps its limit: its second reply waits (1 per 30 s).
        outbound.put(Outgoing("channel49", "49", "again"))
        await eventually(lambda: clock.sleepers, what="the rate limit to hold")
        assert len(platform.sent) == 50
        clock.advance(31)
        await eventually(lambda: len(platform.sent) == 51, what="the reply once the window moved")
        # Windows with no send left are forgotten as new channels come.
        outbound.put(Outgoing("newcomer", "0", "hi"))
        await eventually(lambda: len(platform.sent) == 52, what="a reply in a new channel")
        assert outbound.windows <= 3
    finally:
        await outbound.close()


async def test_one_busy_channel_does_not_hold_the_cap_off_for_the_others() -> None:
    clock = ManualClock()
    platform = Platform(clock)
    outbound = outbound_for(clock, platform, idle_close=0.05)
    outbound.max_windows = 30
    try:
        # The first channel seen stays busy: its second reply waits for its window (1 per 30 s),
        # so its outbox stays open, first in line, while 100 other channels come and go.
        outbound.put(Outgoing("busy", "0", "first"))
        outbound.put(Outgoing("busy", "0", "second"))
        await eventually(lambda: clock.sleepers, what="the busy channel's rate limit to hold")
        for n in range(100):
            outbound.put(Outgoing(f"channel{n}", str(n), f"m{n}"))
        await eventually(lambda: len(platform.sent) == 101, what="one reply per other channel")
        await eventually(lambda: len(outbound) == 1, what="the other channels' outboxes to close")
        assert outbound.windows <= 31
    finally:
        await outbound.close()


async def test_closing_counts_and_logs_what_was_still_queued(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    platform = Platform(clock)
    outbound = outbound_for(clock, platform, idle_close=60)
    for n in range(4):
        outbound.put(Outgoing("streamer", "1", f"m{n}"))
    await eventually(lambda: len(platform.sent) == 1 and clock.sleepers, what="the rate limit to hold")
    loop = asyncio.get_running_loop()
    assert await outbound.drain(loop.time() + 0.1) == 3
    assert await outbound.close() == 3
    assert [r.getMessage() for r in caplog.records if "not sent" in r.getMessage()] == [
        "3 queued replies not sent: the bot stopped before the rate limit let them out"
    ]


async def test_a_reply_held_by_a_429_back_off_is_counted_and_dropped_at_close() -> None:
    # In hand, not queued: Twitch's Retry-After holds it for up to a minute. Closing must
    # still count it and hand it back (its cooldown reservation ends with it).
    clock = ManualClock()
    platform = Platform(clock)
    dropped: list[tuple[str, str]] = []
    outbound = Outbound(
        platform.send,
        rate=lambda channel: RateLimit(20, 30.0),
        backlog=lambda channel: 10,
        clock=clock,
        on_sent=lambda m: None,
        on_dropped=lambda m, reason: dropped.append((m.text, reason)),
    )
    platform.script = [RateLimited(retry_after=60)]
    outbound.put(Outgoing("streamer", "1", "en attente"))
    await eventually(lambda: platform.attempts == 1 and clock.sleepers, what="the 429 back-off")
    assert await outbound.close() == 1
    assert dropped == [("en attente", "shutting down")]
