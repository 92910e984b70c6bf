"""serdabot/redis_hosts.py: a channel layer that carries on through a Redis restart."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from channels_redis.core import RedisChannelLayer
from redis.exceptions import ConnectionError as RedisConnectionError

from serdabot.redis_hosts import redis_host
from tests.faults import PrivateRedis

pytestmark = pytest.mark.services

GROUP = "redis-hosts-test"
SENDS = 20


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with PrivateRedis() as server:
        yield server


async def fill_the_pool(layer: RedisChannelLayer) -> None:
    """Concurrent sends, so the pool holds several connections that a restart leaves stale."""
    await asyncio.gather(*(layer.group_send(GROUP, {"type": "x", "n": n}) for n in range(SENDS)))


async def sends_after_a_restart(
    private_redis: PrivateRedis, host: dict[str, Any]
) -> list[BaseException | None]:
    layer = RedisChannelLayer(hosts=[host])
    try:
        await fill_the_pool(layer)
        private_redis.kill()
        private_redis.start()
        results = await asyncio.gather(
            *(layer.group_send(GROUP, {"type": "x", "n": n}) for n in range(SENDS)), return_exceptions=True
        )
        return [r if isinstance(r, BaseException) else None for r in results]
    finally:
        await layer.close_pools()


async def test_every_send_after_a_redis_restart_goes_through(private_redis: PrivateRedis) -> None:
    failures = [e for e in await sends_after_a_restart(private_redis, redis_host(private_redis.url)) if e]
    assert failures == []


async def test_without_the_retry_the_stale_connections_fail(private_redis: PrivateRedis) -> None:
    # The failure the retry is there for: shows the test above can fail.
    bare = {"address": private_redis.url, "socket_timeout": 30}
    failures = [e for e in await sends_after_a_restart(private_redis, bare) if e]
    assert failures, "no stale connection failed: the restart did not exercise the pool"


async def test_a_redis_that_stays_down_still_fails_fast(private_redis: PrivateRedis) -> None:
    layer = RedisChannelLayer(hosts=[redis_host(private_redis.url)])
    try:
        await fill_the_pool(layer)
        private_redis.kill()
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RedisConnectionError):
            await layer.group_send(GROUP, {"type": "x"})
        assert loop.time() - started < 2
    finally:
        await layer.close_pools()
