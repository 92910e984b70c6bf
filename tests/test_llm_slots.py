"""Slots (`llm.slots`): the in-flight bound, and a tier whose calls show no first token is
skipped rather than queued behind, in one process and across workers sharing Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest

from llm.cascade import slots as slots_module
from llm.cascade.shared import SharedLeases, SharedRedis
from llm.cascade.slots import Slots
from tests.services import redis_url

# Short enough for a quick test, long enough that a loaded machine takes its checks "before the
# floor" in time; the production floor is 1 s.
FLOOR = 0.4
# Long enough past the floor that a loaded machine still sees the call as stuck.
PAST_FLOOR = FLOOR + 0.2


@pytest.fixture(autouse=True)
def short_floor(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(slots_module, "STUCK_FLOOR", FLOOR)
    yield


class Call:
    """A call in its own task, as the cascade makes one: a slot, maybe a first token, a release."""

    def __init__(self, slots: Slots, remaining: float = 5.0, *, skip_stuck: bool = True) -> None:
        self.slots = slots
        self.acquired: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._stream = asyncio.Event()
        self._done = asyncio.Event()
        self.task = asyncio.create_task(self._run(remaining, skip_stuck))

    async def _run(self, remaining: float, skip_stuck: bool) -> None:
        refused = await self.slots.acquire(remaining, skip_stuck=skip_stuck)
        self.acquired.set_result(refused)
        if refused:
            return
        try:
            await self._stream.wait()
            if not self._done.is_set():
                await self.slots.first_token()
            await self._done.wait()
        finally:
            await self.slots.release(0.05)

    async def streams(self) -> None:
        self._stream.set()
        await asyncio.sleep(0.01)

    async def ends(self) -> None:
        self._done.set()
        self._stream.set()
        await self.task


async def held(slots: Slots) -> Call:
    call = Call(slots)
    assert await call.acquired == ""
    return call


async def outcome(slots: Slots, remaining: float = 5.0, *, skip_stuck: bool = True) -> str:
    """Why a message would not get a slot now ("" : it would), its slot given back at once."""
    call = Call(slots, remaining, skip_stuck=skip_stuck)
    refused = await call.acquired
    await call.ends()
    return refused


async def test_a_free_slot_is_taken_at_once() -> None:
    slots = Slots(2)

    first = await held(slots)

    assert slots.in_flight == 1
    await first.ends()
    assert slots.in_flight == 0


async def test_a_call_without_a_first_token_past_the_floor_makes_the_tier_skipped_free_slot_or_not() -> None:
    slots = Slots(4)
    hung = await held(slots)
    assert await outcome(slots) == ""  # not yet: a first token may take a moment

    await asyncio.sleep(PAST_FLOOR)

    assert await outcome(slots) == "Stuck"
    await hung.ends()
    assert await outcome(slots) == ""  # the stuck call is over: nothing to skip


async def test_a_call_that_streams_is_not_stuck() -> None:
    slots = Slots(2)
    streaming = await held(slots)
    await streaming.streams()

    await asyncio.sleep(PAST_FLOOR)

    assert await outcome(slots) == ""
    await streaming.ends()


async def test_a_call_queued_behind_a_streaming_one_is_not_stuck() -> None:
    # LM Studio answers one request at a time: the second waits for its first token while the
    # first streams. The server works; chat goes on queueing.
    slots = Slots(3)
    streaming = await held(slots)
    queued = await held(slots)
    await streaming.streams()

    await asyncio.sleep(PAST_FLOOR)

    assert await outcome(slots) == ""
    await streaming.ends()
    # The server just finished an answer: the queued call's wait for its first token starts now.
    assert await outcome(slots) == ""
    await asyncio.sleep(PAST_FLOOR)
    assert await outcome(slots) == "Stuck"
    await queued.ends()


async def test_the_last_tier_is_waited_for_however_stuck_it_looks() -> None:
    slots = Slots(1)
    hung = await held(slots)
    await asyncio.sleep(PAST_FLOOR)

    # No later tier: a slow answer beats a canned phrase, the first-token clock bounds the wait.
    assert await outcome(slots, remaining=0.2, skip_stuck=False) == "Deadline"
    await hung.ends()
    assert await outcome(slots, skip_stuck=False) == ""


async def test_waiters_that_queued_behind_a_streaming_call_see_the_tier_stuck_after_it() -> None:
    slots = Slots(2)
    streaming = await held(slots)
    hung = await held(slots)
    await streaming.streams()
    first, second = Call(slots, 30.0), Call(slots, 30.0)
    await asyncio.sleep(0.05)
    assert not first.acquired.done() and not second.acquired.done()

    await streaming.ends()

    assert await first.acquired == ""  # the freed slot
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await second.acquired == "Stuck"  # once the calls out show no first token
    assert loop.time() - began < 30.0 / 2  # not at its deadline
    await first.ends()
    await hung.ends()


async def test_a_waiter_gives_up_when_the_call_ahead_looks_stuck_not_at_its_deadline() -> None:
    slots = Slots(1)
    hung = await held(slots)
    loop = asyncio.get_running_loop()
    began = loop.time()

    refused = await outcome(slots, remaining=30.0)

    assert refused == "Stuck"
    assert loop.time() - began < 30.0 / 2  # it did not wait for its deadline
    await hung.ends()


async def test_a_waiter_gets_the_slot_freed_before_the_call_ahead_looks_stuck() -> None:
    slots = Slots(1)
    first = await held(slots)
    waiter = Call(slots)
    await asyncio.sleep(0.02)
    assert slots.waiting == 1

    await first.ends()

    assert await waiter.acquired == ""
    await waiter.ends()


async def test_a_waiter_keeps_its_place_when_the_call_ahead_starts_streaming() -> None:
    slots = Slots(1)
    first = await held(slots)
    waiter = Call(slots)
    await asyncio.sleep(0.02)
    await first.streams()

    await asyncio.sleep(PAST_FLOOR)
    assert not waiter.acquired.done()  # still waiting: the call ahead streams
    await first.ends()

    assert await waiter.acquired == ""
    await waiter.ends()


async def test_the_wait_for_a_first_token_counts_as_stuck_after_three_usual_ones() -> None:
    slots = Slots(1)
    assert slots.stuck_after == FLOOR  # nothing seen yet

    slots.observed_first_token(0.5)  # a warm-up or a probe of one token

    assert slots.stuck_after == pytest.approx(1.5)


async def test_first_tokens_set_the_usual_wait() -> None:
    slots = Slots(1)
    call = await held(slots)
    await asyncio.sleep(0.05)

    await call.streams()

    assert slots.first_token_s is not None and 0.04 <= slots.first_token_s < 1.0
    await call.ends()


# -- across workers, on Redis -------------------------------------------------------------


@asynccontextmanager
async def workers(count: int, *, lease: float = 30.0) -> AsyncIterator[list[Slots]]:
    """`count` workers' slots for one tier (two calls each), sharing their leases on Redis."""
    url = redis_url()
    shared = [SharedRedis(url) for _ in range(count)]
    try:
        yield [Slots(2, SharedLeases(s, "serdabot:llm:test:slots", 4, lease=lease)) for s in shared]
    finally:
        for s in shared:
            await s.aclose()


@pytest.mark.services
async def test_a_call_stuck_in_one_worker_makes_the_others_skip_the_tier() -> None:
    async with workers(2) as (first, second):
        hung = await held(first)
        assert await outcome(second) == ""

        await asyncio.sleep(PAST_FLOOR)

        assert await outcome(second) == "Stuck"
        await hung.streams()  # its first token came after all
        assert await outcome(second) == ""
        await hung.ends()


@pytest.mark.services
async def test_a_worker_streaming_means_another_workers_waiting_call_is_queued() -> None:
    async with workers(2) as (first, second):
        streaming = await held(first)
        queued = await held(second)
        await streaming.streams()

        await asyncio.sleep(PAST_FLOOR)

        assert await outcome(second) == ""
        await streaming.ends()
        # Its wait for a first token starts when the call ahead ended, in every worker's view.
        assert await outcome(first) == ""
        await asyncio.sleep(PAST_FLOOR)
        assert await outcome(first) == "Stuck"
        await queued.ends()


@pytest.mark.services
async def test_a_dead_workers_call_stops_counting_once_its_lease_runs_out() -> None:
    async with workers(2, lease=PAST_FLOOR + 0.2) as (dead, alive):
        # A worker killed mid-call never releases: its lease runs out by itself.
        assert await dead.shared.try_acquire() == "held"  # type: ignore[union-attr]
        await asyncio.sleep(PAST_FLOOR)
        assert await outcome(alive) == "Stuck"

        await asyncio.sleep(0.5)

        assert await outcome(alive) == ""
