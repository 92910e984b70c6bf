"""The change listener hears every notice for as long as the process runs: past the group
expiry, through a Redis restart, and after a refresher that failed."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels_redis.core import RedisChannelLayer

from serdabot.broadcast import GROUP, listen, notify_changed
from serdabot.redis_hosts import redis_host
from tests.adapter_support import eventually
from tests.faults import PrivateRedis


class Refreshers:
    """Refreshers that note what they were asked to refresh (they run in threads)."""

    def __init__(self, *names: str) -> None:
        self.done: list[str] = []
        self.names = names

    def __call__(self) -> Mapping[str, Callable[[], None]]:
        return {name: functools.partial(self.done.append, name) for name in self.names}


@contextlib.asynccontextmanager
async def listening(
    refreshers: Mapping[str, Callable[[], None]], layer: Any
) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(listen(refreshers, layer))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def redis_layer(url: str) -> RedisChannelLayer:
    """A layer as serdabot/settings.py configures it, on the test's own Redis."""
    return RedisChannelLayer(hosts=[redis_host(url)])


def members(url: str, layer: RedisChannelLayer) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.zcard(layer._group_key(GROUP)))
    finally:
        client.close()


async def announce(url: str, what: str) -> None:
    """A notice from another process, on a connection of its own."""
    sender = redis_layer(url)
    await sender.group_send(GROUP, {"type": "config.changed", "what": what})
    await sender.close_pools()


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "serdabot.broadcast"
        and r.levelno == logging.WARNING
        and "change listener" in r.getMessage()
    ]


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with PrivateRedis() as server:
        yield server


async def test_it_still_hears_notices_after_the_group_expiry() -> None:
    layer = InMemoryChannelLayer(group_expiry=2)
    refreshers = Refreshers("fallbacks")
    async with listening(refreshers(), layer) as task:
        await eventually(lambda: bool(layer.groups.get(GROUP)), "the listener joining")
        await asyncio.sleep(5)  # more than twice the expiry

        await layer.group_send(GROUP, {"type": "config.changed", "what": "fallbacks"})

        await eventually(lambda: refreshers.done == ["fallbacks"], "the refresh")
        assert not task.done()


async def test_it_survives_a_redis_restart_and_catches_up(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    layer = redis_layer(private_redis.url)
    refreshers = Refreshers("fallbacks", "channels")
    async with listening(refreshers(), layer) as task:
        await eventually(lambda: members(private_redis.url, layer) == 1, "the listener joining")
        await announce(private_redis.url, "fallbacks")
        await eventually(lambda: refreshers.done == ["fallbacks"], "the first refresh")

        private_redis.kill()
        await asyncio.sleep(1.5)  # several failed receives and joins
        assert not task.done()
        private_redis.start()  # empty: the group is gone

        # What changed while Redis was down was never announced: everything is refreshed once.
        await eventually(lambda: len(refreshers.done) == 3, "the catch-up after the outage")
        assert sorted(refreshers.done[1:]) == ["channels", "fallbacks"]
        await eventually(lambda: members(private_redis.url, layer) == 1, "the listener joining again")
        await announce(private_redis.url, "channels")
        await eventually(lambda: len(refreshers.done) == 4, "a refresh after the restart")
        assert refreshers.done[3] == "channels"
        assert not task.done()

    lines = outage_lines(caplog)
    assert len(lines) == 2, lines  # once when it went away, once when it came back
    assert "Redis" in lines[0] and "back after" in lines[1]
    await layer.close_pools()


@pytest.mark.django_db
async def test_the_first_notice_after_a_redis_restart_is_not_lost(
    private_redis: PrivateRedis, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The process that saves an edit keeps a pooled connection from before the restart, and
    # its notice must still go out (redis-py retries a dead pooled connection itself; the
    # sender retries once more on a connection error).
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [private_redis.url]},
        }
    }
    listener_layer = redis_layer(private_redis.url)
    refreshers = Refreshers("fallbacks", "channels")
    async with listening(refreshers(), listener_layer):
        await eventually(lambda: members(private_redis.url, listener_layer) == 1, "the listener joining")
        await sync_to_async(notify_changed)("fallbacks")  # the sender's pool now holds a connection
        await eventually(lambda: refreshers.done == ["fallbacks"], "the first refresh")

        private_redis.kill()
        await asyncio.sleep(1.5)  # several failed receives: an outage for the listener
        private_redis.start()
        await eventually(lambda: len(refreshers.done) == 3, "the listener's catch-up after the outage")
        await eventually(
            lambda: members(private_redis.url, listener_layer) == 1, "the listener joining again"
        )

        await sync_to_async(notify_changed)("channels")
        await eventually(lambda: len(refreshers.done) == 4, "the notice sent on the stale pool")
        assert refreshers.done[3] == "channels"
    assert not [r for r in caplog.records if "could not broadcast" in r.getMessage()]
    await listener_layer.close_pools()
    sender = get_channel_layer()
    assert sender is not None
    await sender.close_pools()


async def test_a_failing_refresher_does_not_stop_it(caplog: pytest.LogCaptureFixture) -> None:
    layer = InMemoryChannelLayer()
    calls: list[int] = []

    def refresh() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the first refresh breaks")

    async with listening({"fallbacks": refresh}, layer):
        await eventually(lambda: bool(layer.groups.get(GROUP)), "the listener joining")
        for _ in range(2):
            await layer.group_send(GROUP, {"type": "config.changed", "what": "fallbacks"})
        await eventually(lambda: len(calls) == 2, "the second refresh")

    assert any("refreshing fallbacks after a change failed" in r.getMessage() for r in caplog.records)


async def test_it_leaves_the_group_when_cancelled() -> None:
    layer = InMemoryChannelLayer()
    async with listening({}, layer):
        await eventually(lambda: bool(layer.groups.get(GROUP)), "the listener joining")

    assert not layer.groups.get(GROUP)
