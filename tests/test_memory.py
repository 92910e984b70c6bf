"""Conversation memory (`chatbridge.memory`): in this process, and in a real Redis shared by workers.

Expiry runs on a clock the test moves by hand. The Redis tests use keys under a prefix of
their own (never FLUSHDB: other tests share that Redis) and skip when it is not reachable;
the outage tests run a private redis-server they kill and restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from django.test import override_settings

from chatbridge.memory import (
    CONVERSATION_BYTES,
    EXPIRE_MARGIN,
    TURN_CHARS,
    InProcessMemory,
    Memory,
    RedisMemory,
    memory_from_settings,
)
from tests.faults import PrivateRedis
from tests.llm_helpers import eventually
from tests.services import REDIS_URL, unavailable
from tests.subprocesses import ROOT, free_port

TTL = 600.0


class TestClock:
    """Seconds that move only when the test says so."""

    __test__ = False

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


async def exchange(memory: Memory, user: str, n: int, *, channel: str = "streamer", size: int = 0) -> None:
    answer = f"réponse {n}" + "x" * size
    await memory.remember("twitch", channel, user, f"question {n}", answer)


async def questions(memory: Memory, user: str, *, channel: str = "streamer") -> list[str]:
    return [q for q, _ in await memory.recall("twitch", channel, user)]


# -- in this process ------------------------------------------------------------------------


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


def local(clock: TestClock, **limits: int | float) -> InProcessMemory:
    values: dict[str, int | float] = {"turns": 6, "ttl": TTL, "max_users": 100, "max_bytes": 1_000_000}
    values.update(limits)
    return InProcessMemory(
        int(values["turns"]), values["ttl"], int(values["max_users"]), int(values["max_bytes"]), clock
    )


async def test_it_keeps_the_last_turns_oldest_first(clock: TestClock) -> None:
    memory = local(clock, turns=3)
    for n in range(5):
        await exchange(memory, "zoe", n)

    assert await memory.recall("twitch", "streamer", "zoe") == [
        ("question 2", "réponse 2"),
        ("question 3", "réponse 3"),
        ("question 4", "réponse 4"),
    ]


async def test_a_conversation_is_one_user_in_one_channel(clock: TestClock) -> None:
    memory = local(clock)
    await exchange(memory, "zoe", 1)
    await exchange(memory, "zoe", 2, channel="other")
    await memory.remember("discord", "streamer", "zoe", "question 3", "réponse 3")

    assert await questions(memory, "zoe") == ["question 1"]
    assert await questions(memory, "zoe", channel="other") == ["question 2"]
    assert await questions(memory, "bob") == []
    # Twitch names are case-insensitive, and "@zoe" is zoe.
    assert await questions(memory, "@Zoe", channel="Streamer") == ["question 1"]


async def test_zero_turns_turns_memory_off(clock: TestClock) -> None:
    memory = local(clock, turns=0)
    await exchange(memory, "zoe", 1)

    assert await memory.recall("twitch", "streamer", "zoe") == []
    assert len(memory) == 0


async def test_turns_expire_after_the_ttl_on_the_clock(clock: TestClock) -> None:
    memory = local(clock)
    await exchange(memory, "zoe", 1)
    clock.advance(TTL - 100)
    await exchange(memory, "zoe", 2)
    clock.advance(99)
    assert await questions(memory, "zoe") == ["question 1", "question 2"]

    clock.advance(1)  # question 1 is TTL seconds old
    assert await questions(memory, "zoe") == ["question 2"]

    clock.advance(TTL)
    assert await questions(memory, "zoe") == []
    assert len(memory) == 0 and memory.bytes == 0


async def test_expired_conversations_are_dropped_by_later_writes(clock: TestClock) -> None:
    memory = local(clock)
    for n in range(10):
        await exchange(memory, f"user{n}", n)
    clock.advance(TTL)

    await exchange(memory, "zoe", 1)

    assert len(memory) == 1


async def test_the_least_recently_written_conversation_goes_first(clock: TestClock) -> None:
    memory = local(clock, max_users=3)
    for name in ("ana", "bob", "cyd"):
        await exchange(memory, name, 1)
    await exchange(memory, "ana", 2)  # ana is recent again

    await exchange(memory, "dan", 1)

    assert len(memory) == 3
    assert await questions(memory, "bob") == []
    assert await questions(memory, "ana") == ["question 1", "question 2"]
    assert await questions(memory, "dan") == ["question 1"]


async def test_the_bytes_in_memory_stay_under_the_cap(clock: TestClock) -> None:
    memory = local(clock, max_bytes=10_000)
    for n in range(40):
        await exchange(memory, f"user{n}", n, size=900)
        assert memory.bytes <= 10_000

    assert 5 <= len(memory) < 40
    assert await questions(memory, "user39") == ["question 39"]
    assert await questions(memory, "user0") == []


async def test_each_turn_is_cut_to_a_sane_size(clock: TestClock) -> None:
    memory = local(clock)
    await memory.remember("twitch", "streamer", "zoe", "q" * 5_000, "a" * 50_000)

    [(question, answer)] = await memory.recall("twitch", "streamer", "zoe")
    assert (len(question), len(answer)) == (TURN_CHARS, TURN_CHARS)


async def test_one_conversation_cannot_take_more_than_its_share(clock: TestClock) -> None:
    memory = local(clock, turns=50)
    for n in range(50):
        await memory.remember("twitch", "streamer", "zoe", f"question {n}", "é" * TURN_CHARS)

    remembered = await questions(memory, "zoe")
    assert memory.bytes <= CONVERSATION_BYTES
    assert remembered[-1] == "question 49" and len(remembered) < 50


async def test_forget_clears_one_conversation(clock: TestClock) -> None:
    memory = local(clock)
    await exchange(memory, "zoe", 1)
    await exchange(memory, "bob", 1)

    assert await memory.forget("twitch", "streamer", "@Zoe")
    assert not await memory.forget("twitch", "streamer", "zoe")
    assert await questions(memory, "zoe") == []
    assert await questions(memory, "bob") == ["question 1"]
    clock.advance(TTL)
    assert not await memory.forget("twitch", "streamer", "bob")  # nothing left to forget


def test_settings_pick_the_store() -> None:
    with override_settings(REDIS_URL="", MEMORY_TURNS=4, MEMORY_TTL=60):
        memory = memory_from_settings()
        assert isinstance(memory, InProcessMemory) and (memory.turns, memory.ttl) == (4, 60)
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0", MEMORY_MAX_USERS=7, MEMORY_MAX_BYTES=5_000):
        memory = memory_from_settings()
        assert isinstance(memory, RedisMemory)
        assert (memory.url, memory.max_users, memory.max_bytes) == ("redis://127.0.0.1:1/0", 7, 5_000)
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0", MEMORY_TURNS=0):
        assert isinstance(memory_from_settings(), InProcessMemory)  # off: no connection for nothing


# -- in Redis -------------------------------------------------------------------------------


def reachable_redis() -> str:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL}: {type(exc).__name__}")
    return REDIS_URL


@pytest.fixture
def prefix() -> Iterator[str]:
    """Keys of this test only, deleted afterwards."""
    import redis

    name = f"serdabot:memory:test-{uuid.uuid4().hex[:8]}:"
    yield name
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        keys = list(client.scan_iter(f"{name}*"))
        if keys:
            client.delete(*keys)
        client.close()
    except redis.RedisError:
        pass


@pytest.fixture
async def raw(prefix: str) -> AsyncIterator[Any]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(reachable_redis(), decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def shared(prefix: str, clock: TestClock) -> AsyncIterator[list[RedisMemory]]:
    """Two memories on one Redis, as two workers have: what one writes, the other reads."""
    url = reachable_redis()
    memories = [RedisMemory(url, prefix=prefix, ttl=TTL, clock=clock) for _ in range(2)]
    yield memories
    for memory in memories:
        await memory.aclose()


def redis_memory(prefix: str, clock: TestClock, **limits: int | float) -> RedisMemory:
    return RedisMemory(reachable_redis(), prefix=prefix, clock=clock, **limits)  # type: ignore[arg-type]


async def test_two_workers_share_one_conversation(shared: list[RedisMemory]) -> None:
    first, second = shared
    await exchange(first, "zoe", 1)
    await exchange(second, "@Zoe", 2)

    assert await first.recall("twitch", "streamer", "zoe") == [
        ("question 1", "réponse 1"),
        ("question 2", "réponse 2"),
    ]
    assert await questions(second, "zoe") == ["question 1", "question 2"]
    assert await questions(second, "zoe", channel="other") == []

    assert await second.forget("twitch", "streamer", "zoe")
    assert await questions(first, "zoe") == []
    assert not await first.forget("twitch", "streamer", "zoe")


WORKER = """
import asyncio, json, sys

from chatbridge.memory import RedisMemory


async def serve():
    memory = RedisMemory(sys.argv[1], prefix=sys.argv[2])
    print("ready", flush=True)
    for line in sys.stdin:
        action, user, *text = json.loads(line)
        if action == "remember":
            await memory.remember("twitch", "streamer", user, *text)
            result = None
        elif action == "recall":
            result = await memory.recall("twitch", "streamer", user)
        else:
            result = await memory.forget("twitch", "streamer", user)
        print(json.dumps(result), flush=True)
    await memory.aclose()


asyncio.run(serve())
"""


class Worker:
    def __init__(self, url: str, prefix: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, url, prefix],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.ask_line() == "ready"

    def ask_line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def do(self, *command: str) -> object:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.ask_line())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


@pytest.fixture
def workers(prefix: str) -> Iterator[tuple[Worker, Worker]]:
    url = reachable_redis()
    pair = Worker(url, prefix), Worker(url, prefix)
    yield pair
    for worker in pair:
        worker.close()


def test_two_worker_processes_see_the_same_memory(workers: tuple[Worker, Worker]) -> None:
    first, second = workers

    first.do("remember", "zoe", "c'est quoi Python ?", "Un serpent qui code.")
    assert second.do("recall", "zoe") == [["c'est quoi Python ?", "Un serpent qui code."]]
    second.do("remember", "zoe", "et Rust ?", "Un crabe qui compile.")
    assert first.do("recall", "zoe") == [
        ["c'est quoi Python ?", "Un serpent qui code."],
        ["et Rust ?", "Un crabe qui compile."],
    ]
    assert first.do("recall", "bob") == []

    assert second.do("forget", "zoe") is True
    assert first.do("recall", "zoe") == []


async def test_turns_expire_on_the_clock_for_every_worker(
    shared: list[RedisMemory], clock: TestClock
) -> None:
    first, second = shared
    await exchange(first, "zoe", 1)
    clock.advance(TTL - 1)
    await exchange(second, "zoe", 2)
    assert await questions(first, "zoe") == ["question 1", "question 2"]

    clock.advance(1)
    assert await questions(second, "zoe") == ["question 2"]
    clock.advance(TTL)
    assert await questions(first, "zoe") == []
    assert not await second.forget("twitch", "streamer", "zoe")


async def test_expired_conversations_are_deleted_by_later_writes(
    prefix: str, clock: TestClock, raw: Any
) -> None:
    memory = redis_memory(prefix, clock, ttl=TTL)
    for n in range(5):
        await exchange(memory, f"user{n}", n)
    clock.advance(TTL)

    await exchange(memory, "zoe", 1)
    await memory.aclose()

    assert await raw.zrange(f"{prefix}index", 0, -1) == [memory.key("twitch", "streamer", "zoe")]
    assert await raw.exists(memory.key("twitch", "streamer", "user0")) == 0


async def test_redis_keeps_the_last_turns_and_expires_idle_keys_itself(
    prefix: str, clock: TestClock, raw: Any
) -> None:
    memory = redis_memory(prefix, clock, turns=3, ttl=TTL)
    for n in range(5):
        await exchange(memory, "zoe", n)
    key = memory.key("twitch", "streamer", "zoe")

    assert await questions(memory, "zoe") == ["question 2", "question 3", "question 4"]
    assert await raw.llen(key) == 3
    assert TTL < await raw.ttl(key) <= TTL + EXPIRE_MARGIN
    assert key.startswith("serdabot:memory:")
    await memory.aclose()


async def test_redis_keeps_the_most_recent_conversations(prefix: str, clock: TestClock, raw: Any) -> None:
    memory = redis_memory(prefix, clock, max_users=3)
    for name in ("ana", "bob", "cyd"):
        await exchange(memory, name, 1)
        clock.advance(1)
    await exchange(memory, "ana", 2)
    clock.advance(1)

    await exchange(memory, "dan", 1)

    assert await raw.zcard(f"{prefix}index") == 3
    assert await raw.exists(memory.key("twitch", "streamer", "bob")) == 0
    assert await questions(memory, "ana") == ["question 1", "question 2"]
    assert await questions(memory, "dan") == ["question 1"]
    await memory.aclose()


async def test_redis_stays_under_the_byte_cap(prefix: str, clock: TestClock, raw: Any) -> None:
    memory = redis_memory(prefix, clock, max_bytes=10_000)
    for n in range(40):
        await exchange(memory, f"user{n}", n, size=900)
        clock.advance(1)

    keys = await raw.zrange(f"{prefix}index", 0, -1)
    stored = 0
    for key in keys:
        stored += sum(len(entry.encode()) for entry in await raw.lrange(key, 0, -1))
    assert stored <= 10_000
    assert int(await raw.get(f"{prefix}bytes")) == stored
    assert 5 <= len(keys) < 40
    assert await questions(memory, "user39") == ["question 39"]
    assert await questions(memory, "user0") == []
    await memory.aclose()


async def test_one_redis_conversation_cannot_take_more_than_its_share(
    prefix: str, clock: TestClock, raw: Any
) -> None:
    memory = redis_memory(prefix, clock, turns=50)
    for n in range(50):
        await memory.remember("twitch", "streamer", "zoe", f"question {n}", "é" * 5_000)

    entries = await raw.lrange(memory.key("twitch", "streamer", "zoe"), 0, -1)
    assert sum(len(entry.encode()) for entry in entries) <= CONVERSATION_BYTES
    remembered = await questions(memory, "zoe")
    assert remembered[-1] == "question 49" and len(remembered) < 50
    assert all(len(answer) == TURN_CHARS for _, answer in await memory.recall("twitch", "streamer", "zoe"))
    await memory.aclose()


async def test_forget_in_redis_gives_its_bytes_back(prefix: str, clock: TestClock, raw: Any) -> None:
    memory = redis_memory(prefix, clock)
    await exchange(memory, "zoe", 1)
    await exchange(memory, "bob", 1)

    assert await memory.forget("twitch", "streamer", "zoe")

    [bob] = await raw.zrange(f"{prefix}index", 0, -1)
    size = sum(len(e.encode()) for e in await raw.lrange(bob, 0, -1))
    assert int(await raw.get(f"{prefix}bytes")) == size
    await memory.aclose()


async def test_names_cannot_collide_in_keys(prefix: str, clock: TestClock) -> None:
    memory = redis_memory(prefix, clock)
    await memory.remember("twitch", "a:b", "c", "question 1", "réponse 1")

    assert await memory.recall("twitch", "a", "b:c") == []
    await memory.aclose()


# -- Redis away -----------------------------------------------------------------------------


def outage_lines(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "chatbridge.memory" and words in r.getMessage()
    ]


async def test_redis_refusing_costs_nothing_but_the_memory(
    clock: TestClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "chatbridge.memory")
    memory = RedisMemory(f"redis://127.0.0.1:{free_port()}/0", clock=clock)

    for n in range(5):
        assert await memory.recall("twitch", "streamer", "zoe") == []
        await exchange(memory, "zoe", n)
        assert not await memory.forget("twitch", "streamer", "zoe")
    await memory.aclose()

    assert len(outage_lines(caplog, "cannot reach Redis")) == 1


async def test_a_hung_redis_does_not_hold_the_reply(clock: TestClock) -> None:
    # Accepts connections (the kernel's backlog) and never answers a byte.
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        memory = RedisMemory(f"redis://127.0.0.1:{port}/0", clock=clock, timeout=0.3)
        began = time.monotonic()
        assert await memory.recall("twitch", "streamer", "zoe") == []
        await exchange(memory, "zoe", 1)
        took = time.monotonic() - began
        await memory.aclose()

    assert took < 3.0  # bounded by the 0.3 s timeout, not by the socket waiting forever


async def test_memory_comes_back_with_redis_by_itself(
    clock: TestClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "chatbridge.memory")
    with PrivateRedis() as redis:
        memory = RedisMemory(redis.url, clock=clock, retry_first=0.05, retry_cap=0.2)
        await exchange(memory, "zoe", 1)
        assert await questions(memory, "zoe") == ["question 1"]

        redis.kill()
        for n in range(3):
            assert await memory.recall("twitch", "streamer", "zoe") == []
            await exchange(memory, "zoe", n)
            await asyncio.sleep(0.1)
        redis.start()

        async def remembers_again() -> bool:
            await exchange(memory, "zoe", 2)
            return await questions(memory, "zoe") != []

        # Redis came back empty (no persistence): what is said from now on is remembered again.
        await eventually(remembers_again, within=10.0, every=0.1)
        await memory.aclose()

    assert len(outage_lines(caplog, "cannot reach Redis")) == 1
    assert len(outage_lines(caplog, "Redis is back")) == 1
