"""cancel_and_wait: a lost cancellation is repeated, the caller's own is kept, waits are bounded."""

from __future__ import annotations

import asyncio
import gc
import random
import sys
from typing import Any

import pytest
from channels_redis.core import RedisChannelLayer

from serdabot.redis_hosts import redis_host
from serdabot.tasks import RECANCEL_EVERY, cancel_and_wait, finish_shielded
from tests.services import redis_url


async def sends_then_blocks(ready: asyncio.Event, write: asyncio.Future[None]) -> None:
    """What a channel-layer receive does: redis-py sends a command inside `wait_for`, then
    blocks on a read that only a message would end."""
    ready.set()
    await asyncio.wait_for(write, 30)
    await asyncio.Event().wait()


async def cancelled_as_its_write_ends() -> asyncio.Task[None]:
    """The task above, cancelled in the very loop iteration its write completes."""
    ready, write = asyncio.Event(), asyncio.get_running_loop().create_future()
    task = asyncio.create_task(sends_then_blocks(ready, write))
    await ready.wait()
    write.set_result(None)
    task.cancel()
    return task


class Deaf:
    """A task that takes no notice of cancellation until told to stop."""

    def __init__(self) -> None:
        self.cancelled = 0
        self.stopping = False
        self.task = asyncio.create_task(self.run())

    async def run(self) -> None:
        while not self.stopping:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                self.cancelled += 1

    async def stop(self) -> None:
        self.stopping = True
        self.task.cancel()
        await self.task


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="CPython 3.12 fixed wait_for (gh-86296)")
async def test_on_this_python_one_cancellation_can_be_lost() -> None:
    task = await cancelled_as_its_write_ends()

    done, _ = await asyncio.wait([task], timeout=0.5)

    assert not done, "the cancellation was delivered: the case below no longer needs the repeat"
    await cancel_and_wait([task])


async def test_a_lost_cancellation_is_repeated_until_the_task_ends() -> None:
    task = await cancelled_as_its_write_ends()

    left = await cancel_and_wait([task], within=5)

    assert left == set()
    assert task.cancelled()


async def test_the_wait_is_bounded_and_says_what_still_runs() -> None:
    deaf = Deaf()
    quick = asyncio.create_task(asyncio.sleep(10))
    await asyncio.sleep(0)

    try:
        left = await cancel_and_wait([deaf.task, quick], within=0.6)

        assert left == {deaf.task}
        assert quick.cancelled()
        assert deaf.cancelled >= 2  # cancelled again while it went on
    finally:
        await deaf.stop()  # a task deaf to cancellation would hang the loop's teardown


async def test_the_callers_own_cancellation_is_not_swallowed() -> None:
    deaf = Deaf()
    waiting = asyncio.create_task(cancel_and_wait([deaf.task]))
    await asyncio.sleep(0.05)

    try:
        waiting.cancel()
        done, _ = await asyncio.wait([waiting], timeout=2)

        assert done and waiting.cancelled()
    finally:
        await deaf.stop()


async def test_an_error_on_the_way_out_is_retrieved_not_raised() -> None:
    async def fails_when_stopped() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise RuntimeError("closing a socket that was gone") from None

    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        task = asyncio.create_task(fails_when_stopped())
        await asyncio.sleep(0)
        assert await cancel_and_wait([task]) == set()
        assert isinstance(task.exception(), RuntimeError)
        del task
        gc.collect()
    finally:
        loop.set_exception_handler(None)

    assert reported == []


async def test_a_channel_layer_receive_always_stops() -> None:
    """Cancelled at any moment of its Redis round trips, a real receive ends (a single
    cancellation left about one in ten running here, until the next message)."""
    layer = RedisChannelLayer(hosts=[redis_host(redis_url())])
    channel = await layer.new_channel()
    try:
        for _ in range(40):
            receive = asyncio.create_task(layer.receive(channel))
            await asyncio.sleep(random.choice([0, 0.0005, 0.001, 0.002, 0.005, 0.02]))
            assert await cancel_and_wait([receive], within=5) == set()
        # And the layer still delivers: nothing was left holding the channel's receive lock.
        await layer.send(channel, {"type": "chat.ping"})
        assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "chat.ping"}
    finally:
        await layer.close_pools()


async def test_cleanup_run_shielded_is_waited_for_through_repeated_cancellations() -> None:
    done: list[str] = []

    async def cleanup() -> None:
        await asyncio.sleep(RECANCEL_EVERY * 5)  # cancelled four times meanwhile
        done.append("state written")

    async def stops_cleanly() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await finish_shielded(cleanup(), within=5)

    task = asyncio.create_task(stops_cleanly())
    await asyncio.sleep(0)

    assert await cancel_and_wait([task], within=5) == set()

    assert done == ["state written"]  # asyncio.shield alone would have let the task end first
    assert task.cancelled()


async def test_cleanup_run_shielded_is_waited_for_no_longer_than_told() -> None:
    async def stops_slowly() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await finish_shielded(asyncio.Event().wait(), within=0.3)

    task = asyncio.create_task(stops_slowly())
    await asyncio.sleep(0)

    assert await cancel_and_wait([task], within=5) == set()
    assert task.cancelled()
