"""One view of each tier for every worker: breaker state and the in-flight bound in Redis.

With REDIS_URL set, each tier's `BreakerRecord` is one Redis key, changed in a
WATCH/MULTI transaction: the worker whose transaction changes the public state is
the one that logs and records it, so the dashboard reads one stream per tier. The
in-flight bound is a sorted set of leases (a worker killed mid-call frees its lease
when the lease expires).

If Redis stops answering, each worker falls back to its own state and says so once;
when Redis answers again, the shared state is used again (also said once). While
Redis is known to be down it is not asked again for `RETRY_EVERY` seconds, so chat
does not pay a connection attempt per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError

from llm.cascade.breaker import BreakerRecord, LocalStore
from serdabot.outage import RELAPSE

log = logging.getLogger("llm.shared")

T = TypeVar("T")
Lease = Literal["held", "full", "stuck", "down"]

PREFIX = "serdabot:llm"
# How long to leave a Redis that failed alone before asking it again.
RETRY_EVERY = 2.0
# Redis answers in well under a millisecond on a LAN; past this it is treated as down.
SOCKET_TIMEOUT = 0.5
# Shared state nobody touched for this long is forgotten (a tier renamed, an endpoint changed).
RECORD_TTL = 7 * 24 * 3600

# Both scripts: KEYS are the leases (score: when each expires) and the calls still waiting
# for their first token (score: when each began). The tier looks stuck when a call has
# waited for its first token since before `before` and no call in flight streams.
_STUCK = """
local function stuck(before)
  local waiting, overdue = 0, false
  local calls = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  for i = 1, #calls, 2 do
    if redis.call('ZSCORE', KEYS[1], calls[i]) then
      waiting = waiting + 1
      if tonumber(calls[i + 1]) < before then
        overdue = true
      end
    else
      redis.call('ZREM', KEYS[2], calls[i])  -- its lease ran out: its worker died
    end
  end
  return overdue and waiting >= redis.call('ZCARD', KEYS[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
"""
# ARGV: now, the stuck start. Returns 1 (stuck) or 0.
_IS_STUCK = (
    _STUCK
    + """
if stuck(tonumber(ARGV[2])) then
  return 1
end
return 0
"""
)
# ARGV: the member, now. A call that streamed (no longer waiting for its first token) ends:
# the calls queued behind it at the server start their wait now.
_RELEASE = """
local waited = redis.call('ZSCORE', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if not waited then
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2])) do
    redis.call('ZADD', KEYS[2], ARGV[2], member)
  end
end
return 0
"""
# ARGV: now, the stuck start, the new lease's expiry, the bound, the new member. Returns 1
# (held), 0 (bound reached) or -1 (stuck: the tier is skipped, not queued for).
_ACQUIRE = (
    _STUCK
    + """
if stuck(tonumber(ARGV[2])) then
  return -1
end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[5])
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[5])
  redis.call('EXPIRE', KEYS[1], 3600)
  redis.call('EXPIRE', KEYS[2], 3600)
  return 1
end
return 0
"""
)


def tier_key(tier: str, url: str) -> str:
    """Keyed by endpoint too: two tiers of the same name at different servers are different tiers."""
    digest = hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()[:12]
    return f"{PREFIX}:{tier}:{digest}"


class SharedRedis:
    """One client per LLM service, and the outage bookkeeping every shared object uses."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: aioredis.Redis | None = None
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._said = False  # the current outage was logged
        self._back_at = -RELAPSE

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self.url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT
            )
        return self._client

    @property
    def available(self) -> bool:
        """False while Redis is known down and not yet due for another try."""
        return self._down_since is None or time.monotonic() >= self._retry_at

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._retry_at = now + RETRY_EVERY
        if self._down_since is None:
            self._down_since = now
            # Just after Redis came back, a pooled connection from before its restart fails
            # once: the same outage (serdabot.outage's rule), not a second warning.
            self._said = now - self._back_at >= RELAPSE
        elif not self._said and now - self._down_since >= RELAPSE:
            self._said = True  # that "relapse" lasts: a new outage after all
        else:
            return
        if self._said:
            log.warning(
                "shared LLM state: Redis unreachable (%s); this worker uses its own breakers and "
                "bounds until it answers again",
                type(exc).__name__,
            )

    def worked(self) -> None:
        if self._down_since is not None:
            if self._said:
                self._back_at = time.monotonic()
                log.info(
                    "shared LLM state: Redis answers again after %.0f s; back to the shared breakers",
                    time.monotonic() - self._down_since,
                )
            self._down_since = None

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()


class RedisStore:
    """A `BreakerStore` in Redis, with this process's `LocalStore` as the fallback."""

    def __init__(self, shared: SharedRedis, key: str) -> None:
        self.shared = shared
        self.key = key
        self.fallback = LocalStore()
        self._last = BreakerRecord()
        # True until the key is known to have existed before this process (see `created`).
        self.created = False

    @property
    def last(self) -> BreakerRecord:
        return self.fallback.record if self.shared.down else self._last

    async def read(self) -> BreakerRecord:
        if not self.shared.available:
            return self.fallback.record
        try:
            raw = await self.shared.client.get(self.key)
        except (RedisError, OSError) as exc:
            self._lost(exc)
            return self.fallback.record
        self._back()
        self._last = _decode(raw)
        return self._last

    async def update(self, change: Callable[[BreakerRecord], T]) -> T:
        if not self.shared.available:
            return change(self.fallback.record)
        try:
            result = await self._transaction(change)
        except (RedisError, OSError) as exc:
            self._lost(exc)
            return change(self.fallback.record)
        self._back()
        return result

    async def init(self) -> bool:
        """Create the key if no process did yet; True when this process created it."""
        if not self.shared.available:
            return True
        try:
            created = bool(
                await self.shared.client.set(self.key, _encode(BreakerRecord()), nx=True, ex=RECORD_TTL)
            )
        except (RedisError, OSError) as exc:
            self._lost(exc)
            return True
        self._back()
        self.created = created
        return created

    async def _transaction(self, change: Callable[[BreakerRecord], T]) -> T:
        async with self.shared.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self.key)
                    record = _decode(await pipe.get(self.key))
                    result = change(record)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(self.key, _encode(record), ex=RECORD_TTL)
                    await pipe.execute()
                except WatchError:
                    continue  # another worker changed it first: decide again on its state
                self._last = record
                return result

    def _lost(self, exc: BaseException) -> None:
        if not self.shared.down:
            # Carry on from the last shared state rather than from "up".
            self.fallback.record = BreakerRecord.from_json(self._last.to_json())
        self.shared.failed(exc)

    def _back(self) -> None:
        self.shared.worked()


class SharedLeases:
    """At most `size` calls in flight at one tier across every worker (leases in a sorted set),
    and which of them still wait for their first token (another sorted set)."""

    def __init__(self, shared: SharedRedis, key: str, size: int, *, lease: float) -> None:
        self.shared = shared
        self.key = f"{key}:inflight"
        self.first_key = f"{key}:nofirsttoken"
        self.size = size
        self.lease = lease
        # This process's leases, by the task that holds each.
        self._mine: dict[asyncio.Task[object] | None, str] = {}
        self._scripts: dict[str, Any] = {}

    async def try_acquire(self, *, stuck_after: float = math.inf) -> Lease:
        """ "held", "full" (the bound is reached), "stuck" (a call in some worker has shown no first
        token for `stuck_after` seconds, and none streams) or "down" (Redis is: no shared bound)."""
        member = uuid.uuid4().hex
        now = time.time()
        got = await self._run(_ACQUIRE, now, _before(now, stuck_after), now + self.lease, self.size, member)
        if got is None:
            return "down"
        if got == 1:
            self._mine[asyncio.current_task()] = member
            return "held"
        return "stuck" if got == -1 else "full"

    async def stuck(self, stuck_after: float) -> bool | None:
        """Does the tier look stuck, in every worker's view? None: Redis cannot say."""
        now = time.time()
        got = await self._run(_IS_STUCK, now, _before(now, stuck_after))
        return None if got is None else got == 1

    async def _run(self, script: str, *args: float | int | str) -> Any:
        if not self.shared.available:
            return None
        try:
            if script not in self._scripts:
                self._scripts[script] = self.shared.client.register_script(script)
            got = await self._scripts[script](keys=[self.key, self.first_key], args=list(args))
        except (RedisError, OSError) as exc:
            self.shared.failed(exc)
            return None
        self.shared.worked()
        return got

    async def first_token(self) -> None:
        """The calling task's call streams: no worker takes it for stuck."""
        member = self._mine.get(asyncio.current_task())
        if member is None or not self.shared.available:
            return
        try:
            await self.shared.client.zrem(self.first_key, member)
        except (RedisError, OSError) as exc:
            self.shared.failed(exc)

    async def busy(self) -> bool:
        """Is any worker's call to this tier in flight now? False when Redis cannot say."""
        if not self.shared.available:
            return False
        try:
            count = await self.shared.client.zcount(self.key, time.time(), "+inf")
        except (RedisError, OSError) as exc:
            self.shared.failed(exc)
            return False
        self.shared.worked()
        return bool(count)

    async def release(self) -> None:
        member = self._mine.pop(asyncio.current_task(), None)
        if member is not None:  # None: no lease held; with Redis down, it expires by itself
            await self._run(_RELEASE, member, time.time())


def _before(now: float, stuck_after: float) -> float:
    """The start before which a call still without a first token looks stuck."""
    return now - stuck_after if math.isfinite(stuck_after) else 0.0


def _encode(record: BreakerRecord) -> str:
    return json.dumps(record.to_json())


def _decode(raw: Any) -> BreakerRecord:
    if raw is None:
        return BreakerRecord()
    try:
        return BreakerRecord.from_json(json.loads(raw))
    except ValueError:
        return BreakerRecord()
