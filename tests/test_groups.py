"""Group memberships outlive channels' group_expiry and a Redis restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer

from serdabot.groups import Membership, layer_name, refresh_interval
from serdabot.outage import Outage
from serdabot.redis_hosts import redis_host
from tests.adapter_support import eventually
from tests.faults import PrivateRedis

log = logging.getLogger("tests.groups")
GROUP = "tests.groups"


def outage() -> Outage:
    return Outage("test keeper", "Redis", log)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == log.name and r.levelno == logging.WARNING]


def one_outage_logged(caplog: pytest.LogCaptureFixture) -> bool:
    """Two lines: when Redis went away and when it came back, nothing for the retries."""
    lines = warnings(caplog)
    return (
        len(lines) == 2 and "Redis" in lines[0] and "back after" not in lines[0] and "back after" in lines[1]
    )


class Calls:
    """What a membership's callbacks were told, in order."""

    def __init__(self) -> None:
        self.said: list[str] = []

    async def lost(self) -> None:
        self.said.append("lost")

    async def back(self) -> None:
        self.said.append("back")


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with PrivateRedis() as redis:
        yield redis


@pytest.fixture
async def redis_layer(private_redis: PrivateRedis) -> AsyncIterator[RedisChannelLayer]:
    layer = RedisChannelLayer(hosts=[redis_host(private_redis.url)])
    yield layer
    await layer.close_pools()


async def receiving(layer: Any, channel: str, membership: Membership, got: list[dict[str, Any]]) -> None:
    """A receive loop written as the listeners are: report failures, go on."""
    while True:
        try:
            got.append(await layer.receive(channel))
        except membership.errors as exc:
            await asyncio.sleep(membership.lost(exc))


@contextlib.asynccontextmanager
async def running(coroutine: Any) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(coroutine)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_it_refreshes_at_a_quarter_of_the_expiry_and_at_least_every_five_minutes() -> None:
    assert refresh_interval(InMemoryChannelLayer(group_expiry=2)) == 0.5
    assert refresh_interval(InMemoryChannelLayer(group_expiry=600)) == 150
    assert refresh_interval(InMemoryChannelLayer()) == 300  # channels' default: a day
    assert refresh_interval(object()) == 300


def test_it_names_the_layer_in_its_log_lines() -> None:
    assert layer_name(RedisChannelLayer()) == "Redis"
    assert layer_name(InMemoryChannelLayer()) == "the channel layer"


async def test_a_kept_membership_outlives_the_group_expiry() -> None:
    layer = InMemoryChannelLayer(group_expiry=2)
    kept, joined_once = await layer.new_channel(), await layer.new_channel()
    membership = Membership(layer, GROUP, kept, outage())
    assert await membership.join()
    await layer.group_add(GROUP, joined_once)
    membership.start()

    await asyncio.sleep(5)  # more than twice the expiry
    await layer.group_send(GROUP, {"type": "notice", "n": 1})

    assert await asyncio.wait_for(layer.receive(kept), 5) == {"type": "notice", "n": 1}
    # The control: joined once, dropped after the expiry (what every process did before).
    assert joined_once not in layer.groups.get(GROUP, {})
    await membership.stop()


async def test_stop_leaves_the_group() -> None:
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    membership = Membership(layer, GROUP, channel, outage())
    await membership.join()
    membership.start()

    await membership.stop()

    assert channel not in layer.groups.get(GROUP, {})


async def test_it_rejoins_after_a_redis_restart_and_says_so_once(
    private_redis: PrivateRedis, redis_layer: RedisChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    channel = await redis_layer.new_channel()
    calls = Calls()
    membership = Membership(redis_layer, GROUP, channel, outage(), on_lost=calls.lost, on_back=calls.back)
    assert await membership.join()
    membership.start()
    got: list[dict[str, Any]] = []
    async with running(receiving(redis_layer, channel, membership, got)):
        await redis_layer.group_send(GROUP, {"type": "notice", "n": 1})
        await eventually(lambda: len(got) == 1, "the first notice")

        private_redis.kill()
        await eventually(lambda: calls.said == ["lost"], "the keeper noticing the outage")
        assert membership.deaf
        await asyncio.sleep(1)  # several failed retries
        private_redis.start()  # empty: the group is gone
        await eventually(lambda: calls.said == ["lost", "back"], "the keeper joining again")

        assert not membership.deaf
        await redis_layer.group_send(GROUP, {"type": "notice", "n": 2})
        await eventually(lambda: len(got) == 2, "a notice after the restart")
    assert [m["n"] for m in got] == [1, 2]
    assert one_outage_logged(caplog), warnings(caplog)
    await membership.stop()


async def test_a_first_join_that_fails_is_retried_until_redis_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    with PrivateRedis(start=False) as redis:
        layer = RedisChannelLayer(hosts=[redis_host(redis.url)])
        channel = await layer.new_channel()
        calls = Calls()
        membership = Membership(layer, GROUP, channel, outage(), on_lost=calls.lost, on_back=calls.back)

        assert not await membership.join()
        assert membership.deaf
        membership.start()
        await asyncio.sleep(1)
        redis.start()
        await eventually(lambda: calls.said == ["back"], "the first successful join")

        # The caller of join() decides what to say about a first failure: only the return.
        assert not membership.deaf
        await layer.group_send(GROUP, {"type": "notice"})
        assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "notice"}
        assert one_outage_logged(caplog), warnings(caplog)
        await membership.stop()
        await layer.close_pools()


async def test_stop_never_raises_with_redis_down(
    private_redis: PrivateRedis, redis_layer: RedisChannelLayer
) -> None:
    channel = await redis_layer.new_channel()
    membership = Membership(redis_layer, GROUP, channel, outage())
    await membership.join()
    membership.start()
    private_redis.kill()

    await membership.stop()  # the group_discard fails: a dead Redis forgets members by itself
