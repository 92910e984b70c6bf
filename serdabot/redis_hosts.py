"""How every process connects its channel layer to Redis.

One place, so the settings and the tests' own layers (which stand for other processes)
connect the same way.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

# redis-py 8 reads with a 5 s socket timeout by default, exactly as long as channels_redis
# blocks on an empty channel: every idle receive then failed.
SOCKET_TIMEOUT = 30
# redis-py 8's pool errors out past 100 connections; a chat burst makes many concurrent
# sends, so allow more (they are cheap, local sockets).
MAX_CONNECTIONS = 500
# After a Redis restart every pooled connection is stale: without a retry, the first command
# on each fails once ("Connection closed by server"), so a group_send, a dashboard push or a
# change notice is lost although Redis is back. One retry on a fresh connection fixes that;
# when Redis is really down the retry fails too, within 50 ms, and the caller's own
# outage handling (serdabot/outage.py) takes over. Timeouts are not retried: a blocking read
# that timed out would only wait again.
RETRIES = 1
RETRY_BACKOFF = ExponentialBackoff(cap=0.05, base=0.01)


def redis_host(url: str, **extra: Any) -> dict[str, Any]:
    """One entry of channels_redis's `hosts` for `url` (`extra`: more connection-pool kwargs)."""
    return {
        "address": url,
        "socket_timeout": SOCKET_TIMEOUT,
        "max_connections": MAX_CONNECTIONS,
        "retry": Retry(RETRY_BACKOFF, RETRIES, supported_errors=(RedisConnectionError,)),
        **extra,
    }
