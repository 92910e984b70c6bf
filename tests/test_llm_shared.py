"""Breakers and in-flight bounds shared on Redis by several workers (`llm.shared`).

Real worker processes (`manage.py chat`, and the `LLMService` a worker builds from its
settings, in a process of its own) and services side by side in one event loop, against
fake OpenAI-compatible servers on 127.0.0.1 and a real Redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm.cascade.config import LLMConfig
from llm.cascade.results import CascadeResult
from llm.cascade.service import LLMService
from llm.cascade.shared import PREFIX
from llm.models import TierEvent
from tests.fakes.openai_server import FakeOpenAI
from tests.llm_helpers import TEST_KEY, ask, eventually, llm_config, recorder, rows
from tests.services import REDIS_URL, redis_url
from tests.subprocesses import ROOT, bot_env, free_port, manage, migrated_copy

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

OPENAI_ANSWER = "Réponse du tier OpenAI."
# Short enough for a quick test, long enough that a worker paying it cannot go unnoticed.
FIRST_TOKEN_TIMEOUT = 2.0
# Seconds between the events of a streamed answer: about 1 s per completion.
CHUNK_DELAY = 0.15

# One worker: build the LLMService from the settings (as runbot does), say "ready",
# then send the number of messages read on stdin all at once and print their sources.
BURST = """
import asyncio, json, sys

import django

django.setup()

from llm.cascade.service import LLMService


async def burst():
    llm = LLMService.from_settings()
    await llm.start(process="test")
    print("ready", flush=True)
    count = int(sys.stdin.readline())
    results = await asyncio.gather(*(
        llm.complete(intent="ask", system_prompt="", prompt=f"question {i}", platform="console")
        for i in range(count)
    ))
    print(json.dumps([r.source for r in results]), flush=True)
    await llm.stop()


asyncio.run(burst())
"""


def forget_shared_state() -> None:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        try:
            keys = list(client.scan_iter(f"{PREFIX}:*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
    except redis.RedisError:
        pass  # no Redis here: the tests that need it skip


@pytest.fixture(autouse=True)
def clean_shared_state() -> Iterator[None]:
    """Breaker records live a week in Redis: a later tier at a reused port would inherit one."""
    forget_shared_state()
    yield
    forget_shared_state()


def worker_env(
    local_dir: Path, redis: str, local: FakeOpenAI, openai: FakeOpenAI | None, **extra: str
) -> dict[str, str]:
    values = {
        "REDIS_URL": redis,
        "LLM_ENDPOINT": local.url,
        "LLM_MODEL": "fake-model",
        # Nothing in the background changes a breaker during the test: only messages and warm-ups.
        "LLM_PROBE_INTERVAL": "300",
        "LLM_BREAKER_COOLDOWN": "300",
    }
    if openai is not None:
        values.update(OPENAI_API_KEY=TEST_KEY, OPENAI_BASE_URL=openai.url, OPENAI_MODEL="fake-model")
    values.update(extra)
    return bot_env(local_dir, **values)


def completions(server: FakeOpenAI) -> int:
    """Completion requests received (chat, probes and warm-ups alike)."""
    return sum(1 for r in list(server.requests) if r.path == "/v1/chat/completions")


def tier_of(reply: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in reply["tiers"] if t["tier"] == name)


class Worker:
    """A worker process talking over pipes, its stderr kept in a log file for a failure's post-mortem."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log

    @classmethod
    async def start(cls, env: dict[str, str], log: Path, *args: str) -> Worker:
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *args,
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        return cls(proc, log)

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def line(self, within: float = 60.0) -> str:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), within)
        assert raw, f"the worker exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}"
        return raw.decode().strip()

    async def say(self, text: str) -> dict[str, Any]:
        await self.send(text)
        reply: dict[str, Any] = json.loads(await self.line())
        return reply

    async def close(self) -> int | None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            return await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return None


async def test_a_second_worker_skips_the_tier_the_first_found_hanging(
    local_dir: Path, migrated_template: Path, tmp_path: Path
) -> None:
    redis = redis_url()
    with FakeOpenAI() as local, FakeOpenAI(answer=OPENAI_ANSWER) as openai:
        settings = {"LLM_FIRST_TOKEN_TIMEOUT": f"{FIRST_TOKEN_TIMEOUT:g}", "LLM_WARMUP_TIMEOUT": "300"}
        first = await Worker.start(
            worker_env(local_dir, redis, local, openai, **settings),
            tmp_path / "first.log",
            str(ROOT / "manage.py"),
            "chat",
            "--json",
        )
        try:
            assert (await first.say("!ask c'est quoi Python ?"))["source"] == "local"

            # /models still answers, completions hang: the first worker pays one first-token timeout.
            local.set_fault("completions_hang")
            paid = await first.say("!ask et Redis ?")
            assert paid["source"] == "openai", paid
            assert tier_of(paid, "local")["error"] == "FirstTokenTimeout", paid
            # Its warm-up completion is out (hanging), holding the tier's one warm-up lease.
            await eventually(lambda: local.in_flight == 1, within=10)
            reached = completions(local)

            second_dir = migrated_copy(migrated_template, tmp_path / "second")
            env = worker_env(second_dir, redis, local, openai, **settings)
            done = await asyncio.to_thread(manage, env, "chat", "--json", "-m", "!ask et Django ?")
        finally:
            await first.close()

    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    assert reply["source"] == "openai", reply
    assert reply["reply"].endswith(OPENAI_ANSWER)
    skipped = tier_of(reply, "local")
    assert skipped["outcome"] == "skipped", reply
    assert skipped["error"] in ("Warming", "BreakerOpen"), reply
    # Nothing from the second worker reached the hanging server: no chat message, no warm-up of its own.
    assert completions(local) == reached
    assert reply["latency_ms"] < FIRST_TOKEN_TIMEOUT * 1000, reply


async def test_the_in_flight_bound_holds_across_worker_processes(
    migrated_template: Path, tmp_path: Path
) -> None:
    redis = redis_url()
    with FakeOpenAI() as local:
        workers = []
        try:
            for i in range(3):
                env = worker_env(
                    migrated_copy(migrated_template, tmp_path / f"worker{i}"),
                    redis,
                    local,
                    None,
                    LLM_MAX_INFLIGHT_LOCAL="1",
                )
                workers.append(await Worker.start(env, tmp_path / f"worker{i}.log", "-c", BURST))
            for worker in workers:
                assert await worker.line() == "ready"
            # Boot warm-ups are done; from now on each completion takes about a second.
            local.chunk_delay = CHUNK_DELAY
            local.reset_peak()
            for worker in workers:
                await worker.send("2")
            sources = [json.loads(await worker.line()) for worker in workers]
        finally:
            codes = [await worker.close() for worker in workers]

    # Every worker had its messages in flight at once; the server still saw one chat at a time.
    assert sources == [["local", "local"]] * 3
    assert local.chat_requests == 6
    assert local.peak_chat_in_flight == 1
    assert codes == [0, 0, 0]


def shared_service(config: LLMConfig, redis: str) -> LLMService:
    return LLMService(config, recorder(), redis_url=redis)


async def started_pair(config: LLMConfig) -> tuple[LLMService, LLMService]:
    """Two workers' services sharing one Redis, started."""
    redis = redis_url()
    first, second = shared_service(config, redis), shared_service(config, redis)
    await first.start(process="test")
    await second.start(process="test")
    return first, second


@pytest.mark.django_db(transaction=True)
async def test_two_services_on_one_redis_keep_one_in_flight_bound() -> None:
    redis = redis_url()
    with FakeOpenAI() as local:
        config = llm_config(local.url, timeout=5.0, deadline=15.0, probe_interval=300.0, max_inflight_local=2)
        first, second = shared_service(config, redis), shared_service(config, redis)
        await first.start(process="test")
        await second.start(process="test")
        local.chunk_delay = CHUNK_DELAY
        local.reset_peak()
        results = await asyncio.gather(*(ask(llm) for llm in (first, second) for _ in range(4)))
        await first.stop()
        await second.stop()

    assert [r.source for r in results] == ["local"] * 8
    assert local.peak_chat_in_flight == 2


def local_attempt(result: CascadeResult) -> tuple[str, str]:
    attempt = next(t for t in result.tiers if t.tier == "local")
    return attempt.outcome, attempt.error


@pytest.mark.django_db(transaction=True)
async def test_a_shared_state_change_is_recorded_once() -> None:
    with FakeOpenAI() as local, FakeOpenAI(answer=OPENAI_ANSWER) as openai:
        first, second = await started_pair(llm_config(local.url, openai.url, probe_interval=300.0))

        # Both services send a message to the local tier as it starts refusing connections.
        local.set_fault("refuse")
        failed = await asyncio.gather(ask(first), ask(second))
        after = await asyncio.gather(ask(first), ask(second))
        await first.stop()
        await second.stop()

    assert [local_attempt(r) for r in failed] == [("failed", "ConnectError")] * 2
    assert [local_attempt(r) for r in after] == [("skipped", "BreakerOpen")] * 2
    assert {r.source for r in failed + after} == {"openai"}
    events = [(e.tier, e.state, e.error, e.detail) for e in await rows(TierEvent)]
    starts = [e for e in events if e[3] == "at start"]
    assert sorted(starts) == [("local", "up", "", "at start"), ("openai", "up", "", "at start")]
    assert [e[:3] for e in events if e[3] != "at start"] == [("local", "down", "ConnectError")]


@pytest.mark.django_db(transaction=True)
async def test_an_unconfigured_tier_is_recorded_once_at_start() -> None:
    redis = redis_url()
    with FakeOpenAI() as local:
        config = llm_config(local.url, probe_interval=300.0)
        first, second = shared_service(config, redis), shared_service(config, redis)
        await first.start(process="test")
        await second.start(process="test")
        await first.stop()
        await second.stop()

    starts = [(e.tier, e.state) for e in await rows(TierEvent, detail="at start")]
    assert sorted(starts) == [("local", "up"), ("openai", "not_configured")]


@pytest.mark.django_db(transaction=True)
async def test_without_redis_a_service_uses_its_own_state_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="llm.shared")
    with FakeOpenAI() as local:
        config = llm_config(local.url, probe_interval=300.0)
        llm = LLMService(config, recorder(), redis_url=f"redis://127.0.0.1:{free_port()}/0")
        await llm.start(process="test")
        answered = []
        # Spread over more than one retry period: Redis is asked again, and fails again, quietly.
        for _ in range(6):
            answered.append(await ask(llm))
            await asyncio.sleep(0.5)
        local.set_fault("refuse")
        failed = await ask(llm)
        skipped = await ask(llm)
        await llm.stop()

    assert [r.source for r in answered] == ["local"] * 6
    # The breaker still works, on this process's own state.
    assert local_attempt(failed) == ("failed", "ConnectError")
    assert local_attempt(skipped) == ("skipped", "BreakerOpen")
    assert llm.states()["local"] == "down"
    said = [r for r in caplog.records if r.name == "llm.shared" and "Redis unreachable" in r.getMessage()]
    assert len(said) == 1
    assert said[0].levelno == logging.WARNING


def test_a_stale_connection_just_after_redis_returns_is_not_a_second_outage(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm.cascade import shared

    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])  # llm.shared reads time.monotonic()
    caplog.set_level(logging.INFO, logger="llm.shared")
    redis = shared.SharedRedis("redis://127.0.0.1:1/0")
    redis.failed(ConnectionError("down"))
    now[0] += 3
    redis.worked()
    now[0] += 0.5
    redis.failed(ConnectionError("a pooled connection from before the restart"))
    now[0] += 0.1
    redis.worked()

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if "Redis unreachable" in r.getMessage()]

    assert len(said()) == 1
    # Down again for good, soon after: said once it has lasted longer than a stale pool explains.
    now[0] += 1
    redis.failed(ConnectionError("down again"))
    assert len(said()) == 1
    now[0] += 11
    redis.failed(ConnectionError("down again"))
    redis.failed(ConnectionError("down again"))
    assert len(said()) == 2


@pytest.mark.django_db(transaction=True)
async def test_a_429_seen_by_one_worker_cools_the_tier_for_every_worker() -> None:
    with FakeOpenAI() as local, FakeOpenAI(answer=OPENAI_ANSWER) as openai:
        first, second = await started_pair(llm_config(local.url, openai.url, probe_interval=300.0))
        local.retry_after = "30"
        local.set_fault("rate_limit")
        before = completions(local)

        limited = await ask(first)
        then = await ask(second)
        sent = completions(local) - before
        states = second.states()
        await first.stop()
        await second.stop()

    assert local_attempt(limited) == ("failed", "RateLimited")
    assert local_attempt(then) == ("skipped", "Cooling")  # no request: the other worker was told to wait
    assert then.source == "openai"
    assert sent == 1
    assert states["local"] == "cooling"
