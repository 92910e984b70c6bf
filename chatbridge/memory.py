"""Conversation memory: a user's last exchanges with the bot in a channel, sent with their next question.

A conversation is one user in one channel of one platform. It keeps the last `turns`
(question, answer) exchanges that are younger than `ttl` seconds, on a clock that tests
move by hand. Both stores are bounded: at most `max_users` conversations and about
`max_bytes` of text in all (each turn is cut to TURN_CHARS per side, each conversation to
CONVERSATION_BYTES), the least recently written conversation going first.

In this process (`InProcessMemory`) or, with REDIS_URL, in Redis (`RedisMemory`) so every
worker sees the same conversations. Nothing here touches the database. On the hot path
nothing raises: with Redis away, recall finds nothing and remember/forget do nothing, one
warning per outage, and the next call after it is back uses it again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar
from urllib.parse import quote

from django.conf import settings

from serdabot.outage import Outage, being_cancelled

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.commands.core import AsyncScript

log = logging.getLogger("chatbridge.memory")

T = TypeVar("T")
Turn = tuple[str, str]  # (question, answer)

# The settings' defaults (serdabot/settings.py), for a memory built without them.
TURNS = 6
TTL = 600.0
MAX_USERS = 5_000
MAX_BYTES = 4_000_000
# A turn's question and answer are each cut to this: a chat answer is a few hundred characters,
# and a 2,000-character Discord answer is remembered by its start.
TURN_CHARS = 1_000
# No one conversation holds more than this (its oldest turns go first).
CONVERSATION_BYTES = 16 * 1024

PREFIX = "serdabot:memory:"
# Redis answers in well under a millisecond: past this it is down, and the reply goes on without it.
REDIS_TIMEOUT = 0.5
# Redis deletes a conversation this long after its last turn expired, should no write clean it first.
EXPIRE_MARGIN = 60
# Expired conversations removed from the index per write: the cleanup's cost stays bounded.
CLEANUP_BATCH = 100


class Memory(Protocol):
    async def recall(self, platform: str, channel: str, user: str) -> list[Turn]: ...

    async def remember(self, platform: str, channel: str, user: str, question: str, answer: str) -> None: ...

    async def forget(self, platform: str, channel: str, user: str) -> bool: ...

    async def aclose(self) -> None: ...


def _conversation(platform: str, channel: str, user: str) -> tuple[str, str, str]:
    # Twitch logins are case-insensitive and "@name" is the same viewer.
    return platform, channel.strip().lower(), user.strip().lstrip("@").lower()


def _cut(question: str, answer: str) -> Turn:
    return question[:TURN_CHARS], answer[:TURN_CHARS]


def _encode(at: float, question: str, answer: str) -> str:
    # The time first, then a space: the Redis script reads it without decoding the JSON.
    return f"{at:.3f} {json.dumps([question, answer], ensure_ascii=False)}"


def _decode(raw: bytes | str) -> tuple[float, Turn] | None:
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        at, _, body = text.partition(" ")
        question, answer = json.loads(body)
        if isinstance(question, str) and isinstance(answer, str):
            return float(at), (question, answer)
    except (ValueError, TypeError, UnicodeDecodeError):
        pass  # not ours, or from a version that wrote another format: skipped
    return None


@dataclass(frozen=True, slots=True)
class _Entry:
    at: float
    turn: Turn
    size: int  # bytes, as Redis would store it


class _Bounded:
    """What both stores keep to: how many turns, for how long, how many conversations, how
    many bytes in all and per conversation, on which clock."""

    def __init__(
        self, turns: int, ttl: float, max_users: int, max_bytes: int, clock: Callable[[], float]
    ) -> None:
        self.turns = max(turns, 0)
        self.ttl = ttl
        self.max_users = max(max_users, 1)
        self.max_bytes = max(max_bytes, 1)
        self.conversation_bytes = min(CONVERSATION_BYTES, self.max_bytes)
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self.turns > 0 and self.ttl > 0


class InProcessMemory(_Bounded):
    """Conversations in this process: an LRU of conversations, each a short list of turns."""

    def __init__(
        self,
        turns: int = TURNS,
        ttl: float = TTL,
        max_users: int = MAX_USERS,
        max_bytes: int = MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(turns, ttl, max_users, max_bytes, clock)
        # Least recently written first.
        self._conversations: OrderedDict[tuple[str, str, str], deque[_Entry]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._conversations)

    async def recall(self, platform: str, channel: str, user: str) -> list[Turn]:
        if not self.enabled:
            return []
        key = _conversation(platform, channel, user)
        entries = self._conversations.get(key)
        if not entries:
            return []
        cutoff = self.clock() - self.ttl
        while entries and entries[0].at <= cutoff:
            self._drop_oldest_turn(entries)
        if not entries:
            self._drop(key)
        return [entry.turn for entry in entries]

    async def remember(self, platform: str, channel: str, user: str, question: str, answer: str) -> None:
        if not self.enabled:
            return
        key = _conversation(platform, channel, user)
        now = self.clock()
        turn = _cut(question, answer)
        entry = _Entry(now, turn, len(_encode(now, *turn).encode()))
        entries = self._conversations.get(key)
        if entries is None:
            entries = self._conversations[key] = deque()
        self._conversations.move_to_end(key)
        entries.append(entry)
        self.bytes += entry.size
        while len(entries) > self.turns or (
            len(entries) > 1 and sum(e.size for e in entries) > self.conversation_bytes
        ):
            self._drop_oldest_turn(entries)
        self._evict(key, now - self.ttl)

    async def forget(self, platform: str, channel: str, user: str) -> bool:
        key = _conversation(platform, channel, user)
        entries = self._conversations.get(key)
        if entries is None:
            return False
        alive = entries[-1].at > self.clock() - self.ttl
        self._drop(key)
        return alive

    async def aclose(self) -> None:
        self._conversations.clear()
        self.bytes = 0

    def _evict(self, current: tuple[str, str, str], cutoff: float) -> None:
        # Oldest written first: expired conversations are at the front, then the least recent.
        while self._conversations:
            oldest, entries = next(iter(self._conversations.items()))
            expired = entries[-1].at <= cutoff
            over = len(self._conversations) > self.max_users or self.bytes > self.max_bytes
            if oldest == current or not (expired or over):
                return
            self._drop(oldest)

    def _drop_oldest_turn(self, entries: deque[_Entry]) -> None:
        self.bytes -= entries.popleft().size

    def _drop(self, key: tuple[str, str, str]) -> None:
        entries = self._conversations.pop(key, None)
        if entries:
            self.bytes -= sum(e.size for e in entries)


# KEYS: the conversation, the index (conversation -> time of its last turn), the sizes (conversation
# -> bytes), the total of the sizes. ARGV: the new entry, turns, now, cutoff (older is expired),
# expire (seconds), max conversations, max bytes, max bytes of one conversation, cleanup batch.
_REMEMBER = """
local key = KEYS[1]
redis.call('RPUSH', key, ARGV[1])
redis.call('LTRIM', key, -tonumber(ARGV[2]), -1)
local entries = redis.call('LRANGE', key, 0, -1)
local size = 0
for _, entry in ipairs(entries) do size = size + #entry end
local index = 1
while size > tonumber(ARGV[8]) and index < #entries do
  size = size - #entries[index]
  redis.call('LPOP', key)
  index = index + 1
end
redis.call('EXPIRE', key, ARGV[5])
local before = tonumber(redis.call('HGET', KEYS[3], key) or '0')
redis.call('HSET', KEYS[3], key, size)
local total = redis.call('INCRBY', KEYS[4], size - before)
redis.call('ZADD', KEYS[2], ARGV[3], key)

local function drop(member)
  local bytes = tonumber(redis.call('HGET', KEYS[3], member) or '0')
  redis.call('HDEL', KEYS[3], member)
  redis.call('ZREM', KEYS[2], member)
  redis.call('DEL', member)
  total = redis.call('DECRBY', KEYS[4], bytes)
end

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, tonumber(ARGV[9]))
for _, member in ipairs(expired) do
  if member ~= key then drop(member) end
end
while redis.call('ZCARD', KEYS[2]) > tonumber(ARGV[6]) or total > tonumber(ARGV[7]) do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 1)
  local victim = oldest[1]
  if victim == key then victim = oldest[2] end
  if not victim then break end
  drop(victim)
end
for i = 2, 4 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return size
"""

# KEYS as above. ARGV: cutoff. Returns 1 when the conversation had a turn still in memory.
_FORGET = """
local last = redis.call('LINDEX', KEYS[1], -1)
local bytes = tonumber(redis.call('HGET', KEYS[3], KEYS[1]) or '0')
redis.call('HDEL', KEYS[3], KEYS[1])
redis.call('ZREM', KEYS[2], KEYS[1])
redis.call('DEL', KEYS[1])
if bytes > 0 then redis.call('DECRBY', KEYS[4], bytes) end
if last and tonumber(string.match(last, '^(%S+)')) > tonumber(ARGV[1]) then return 1 end
return 0
"""


class RedisMemory(_Bounded):
    """Conversations in Redis, shared by every worker: one list per conversation, oldest turn first.

    Each entry carries its time, so expiry is decided on `clock` (the wall clock by default,
    the one every worker shares), and a sorted-set index of conversations by last turn lets
    one script trim a conversation and evict the oldest ones atomically. Redis's own EXPIRE
    only cleans up what nobody wrote after.
    """

    def __init__(
        self,
        url: str,
        *,
        turns: int = TURNS,
        ttl: float = TTL,
        max_users: int = MAX_USERS,
        max_bytes: int = MAX_BYTES,
        clock: Callable[[], float] = time.time,
        prefix: str = PREFIX,
        timeout: float = REDIS_TIMEOUT,
        retry_first: float = 0.2,
        retry_cap: float = 2.0,
    ) -> None:
        super().__init__(turns, ttl, max_users, max_bytes, clock)
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.outage = Outage("conversation memory", "Redis", log, first=retry_first, cap=retry_cap)
        self._retry_at = 0.0  # time.monotonic(): while Redis is down, when to ask it again
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}

    @property
    def client(self) -> aioredis.Redis:
        if self._client is None:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
            from redis.exceptions import ConnectionError as RedisConnectionError

            self._client = aioredis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                # Once, at once, on a lost connection only: after a Redis restart a pooled
                # connection is a dead one, and the retry gets a fresh one. A timeout is not retried.
                retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            )
            self._scripts = {
                "remember": self._client.register_script(_REMEMBER),
                "forget": self._client.register_script(_FORGET),
            }
        return self._client

    def key(self, platform: str, channel: str, user: str) -> str:
        # Quoted, so a ":" in a name cannot make two conversations one key.
        parts = (quote(part, safe="") for part in _conversation(platform, channel, user))
        return f"{self.prefix}c:{':'.join(parts)}"

    def _keys(self, key: str) -> list[str]:
        return [key, f"{self.prefix}index", f"{self.prefix}sizes", f"{self.prefix}bytes"]

    async def recall(self, platform: str, channel: str, user: str) -> list[Turn]:
        if not self.enabled:
            return []
        key = self.key(platform, channel, user)
        raw = await self._call(lambda: self.client.lrange(key, 0, -1))
        if not raw:
            return []
        cutoff = self.clock() - self.ttl
        turns = [turn for at, turn in filter(None, map(_decode, raw)) if at > cutoff]
        return turns[-self.turns :]

    async def remember(self, platform: str, channel: str, user: str, question: str, answer: str) -> None:
        if not self.enabled:
            return
        key = self.key(platform, channel, user)
        now = self.clock()
        entry = _encode(now, *_cut(question, answer))
        args: list[str | int] = [
            entry,
            self.turns,
            f"{now:.3f}",
            f"{now - self.ttl:.3f}",
            int(self.ttl) + EXPIRE_MARGIN,
            self.max_users,
            self.max_bytes,
            self.conversation_bytes,
            CLEANUP_BATCH,
        ]
        await self._call(lambda: self._script("remember", keys=self._keys(key), args=args))

    async def forget(self, platform: str, channel: str, user: str) -> bool:
        key = self.key(platform, channel, user)
        cutoff = f"{self.clock() - self.ttl:.3f}"
        return bool(await self._call(lambda: self._script("forget", keys=self._keys(key), args=[cutoff])))

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await client.aclose()
            except Exception:  # closing a dead connection: nothing left to do
                log.debug("closing the memory's Redis client failed", exc_info=True)

    async def _script(self, name: str, *, keys: list[str], args: list[str | int]) -> object:
        client = self.client  # made on first use, and the scripts with it
        return await self._scripts[name](keys=keys, args=args, client=client)

    async def _call(self, request: Callable[[], Awaitable[T]]) -> T | None:
        """`request()` within the timeout; None when Redis is down (said once per outage)."""
        if self.outage.ongoing and time.monotonic() < self._retry_at:
            return None  # known down: no connection attempt per chat message
        try:
            # The whole call, a reconnection included: a hung Redis never holds a reply longer.
            async with asyncio.timeout(self.timeout):
                value = await request()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if being_cancelled():
                raise asyncio.CancelledError from exc
            # Any failure, not only a lost connection (a full Redis refuses writes): the reply
            # goes on without memory, whatever Redis says.
            self._retry_at = time.monotonic() + self.outage.failed(exc)
            return None
        self.outage.recovered()
        return value


def memory_from_settings() -> Memory:
    """Redis when REDIS_URL is set (every worker sees the same conversations), else this process."""
    turns, ttl = int(settings.MEMORY_TURNS), float(settings.MEMORY_TTL)
    max_users, max_bytes = int(settings.MEMORY_MAX_USERS), int(settings.MEMORY_MAX_BYTES)
    if settings.REDIS_URL and turns > 0 and ttl > 0:
        return RedisMemory(settings.REDIS_URL, turns=turns, ttl=ttl, max_users=max_users, max_bytes=max_bytes)
    # MEMORY_TURNS=0 (or MEMORY_TTL=0) turns memory off: no Redis connection for nothing.
    return InProcessMemory(turns, ttl, max_users, max_bytes)
