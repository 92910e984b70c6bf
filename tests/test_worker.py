"""The chat worker's receive loop outlives Redis: killed, restarted, or down at start.

A private redis-server (tests/faults.py) is the project's channel layer for these
tests; the worker, its consumer, the handler and the LLM service are the real ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer

from chatbridge import runtime
from chatbridge.bot import cancel
from chatbridge.consumers import IN_FLIGHT, event_message
from chatbridge.events import WORKER_CHANNEL, ChatEvent
from chatbridge.handler import Handler
from chatbridge.runtime import BotRuntime
from chatbridge.worker import ChatWorker, build_worker
from fallbacks import services as fallbacks
from serdabot.outage import connection_errors
from tests.conftest import disabled_llm
from tests.faults import PrivateRedis
from tests.subprocesses import free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture
def redis() -> Iterator[PrivateRedis]:
    with PrivateRedis(start=False) as server:
        yield server


@pytest.fixture
async def layer_on(redis: PrivateRedis, settings: Any) -> AsyncIterator[Any]:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": redis.url, "socket_timeout": 30}], "expiry": 60},
        }
    }
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    llm: Any = disabled_llm()
    await sync_to_async(fallbacks.warm)()
    runtime.install(BotRuntime(llm, Handler(llm, bot_names=("serdabot",))))
    yield get_channel_layer()
    runtime.install(None)
    layer = channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    if layer is not None:
        await layer.close_pools()


def ask(n: int) -> ChatEvent:
    return ChatEvent(
        platform="twitch", channel="streamer", user=f"viewer{n}", text="!ask ça marche ?", message_id=f"w-{n}"
    )


async def round_trip(layer: Any, n: int, reply_channel: str, deadline: float = 20.0) -> dict[str, Any]:
    """Hand an event to the workers (retrying while Redis is away) and wait for its reply."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline
    while True:
        try:
            await layer.send(WORKER_CHANNEL, event_message(ask(n), reply_channel))
            return await asyncio.wait_for(layer.receive(reply_channel), max(give_up - loop.time(), 0.1))
        except connection_errors() as exc:  # redis-py's own errors included
            if loop.time() > give_up:
                raise AssertionError(f"no reply to event {n}: {exc!r}") from exc
            await asyncio.sleep(0.2)


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "chatbridge.worker"]


async def test_the_worker_survives_redis_being_killed_and_answers_when_it_returns(
    redis: PrivateRedis, layer_on: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "chatbridge.worker")
    redis.start()
    worker = build_worker()
    task = asyncio.create_task(worker.arun())
    try:
        reply_channel = await layer_on.new_channel()
        first = await round_trip(layer_on, 1, reply_channel)
        assert first["event_id"] == "w-1" and first["reply"]["text"].startswith("@viewer1 ")

        redis.kill()
        await asyncio.sleep(2.0)  # the worker's reads fail meanwhile: it must not exit
        assert not task.done()
        redis.restart()
        second = await round_trip(layer_on, 2, reply_channel)
        assert second["event_id"] == "w-2"
        assert not task.done()
    finally:
        await cancel([task])
    lines = outage_lines(caplog)
    assert len([line for line in lines if "cannot reach the channel layer" in line]) == 1, lines
    assert len([line for line in lines if "is back after" in line]) == 1, lines


async def test_a_read_only_redis_gives_one_traceback_and_the_worker_reads_again_after(
    redis: PrivateRedis, layer_on: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # A failover that leaves the worker's Redis a replica: every blocking read is a write
    # refused with READONLY, which is not a lost connection. Logged once, not every second.
    redis.start()
    worker = build_worker()
    task = asyncio.create_task(worker.arun())
    admin = aioredis.Redis.from_url(redis.url)
    try:
        reply_channel = await layer_on.new_channel()
        await round_trip(layer_on, 11, reply_channel)
        await admin.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))
        await asyncio.sleep(3.5)
        assert not task.done()
        failed = [r for r in caplog.records if r.name == "chatbridge.worker" and r.exc_info]
        assert len(failed) == 1, [r.getMessage() for r in failed]
        await admin.execute_command("REPLICAOF", "NO", "ONE")
        reply = await round_trip(layer_on, 12, reply_channel)
        assert reply["event_id"] == "w-12"
    finally:
        await admin.aclose()
        await cancel([task])


async def test_a_worker_started_before_redis_waits_for_it(
    redis: PrivateRedis, layer_on: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "chatbridge.worker")
    task = asyncio.create_task(build_worker().arun())
    try:
        await asyncio.sleep(3.0)  # refused all along: it retries, it does not exit
        assert not task.done()
        redis.start()
        reply = await round_trip(layer_on, 3, await layer_on.new_channel())
        assert reply["event_id"] == "w-3"
    finally:
        await cancel([task])
    assert len([line for line in outage_lines(caplog) if "cannot reach" in line]) == 1


async def test_a_drained_worker_stops_reading_and_cancels_without_hanging(
    redis: PrivateRedis, layer_on: Any
) -> None:
    # redis-py may swallow the cancellation of a blocking read: draining and stopping must
    # still end (SIGTERM must stop the process), whatever the listener was doing.
    redis.start()
    worker = build_worker()
    assert isinstance(worker, ChatWorker)
    task = asyncio.create_task(worker.arun())
    reply_channel = await layer_on.new_channel()
    await round_trip(layer_on, 4, reply_channel)
    loop = asyncio.get_running_loop()
    assert await asyncio.wait_for(worker.drain(loop.time() + 5), 10) == 0
    task.cancel()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 10)
    assert task.done()


class HangingHandler(Handler):
    """A model that never answers: the answer task lives until it is cancelled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.answers = 0

    async def answer(self, event: ChatEvent, command: Any) -> Any:
        self.answers += 1
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        raise AssertionError("unreachable")


async def test_answers_past_the_grace_are_cancelled_by_the_drain(
    redis: PrivateRedis, layer_on: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGTERM during a model call that outlives SHUTDOWN_GRACE: the answer must end inside
    # drain(), before runbot closes the LLM clients, the recorder and the layer under it;
    # and the commands queued behind it (all slots busy) must not start in its place.
    redis.start()
    monkeypatch.setattr("chatbridge.consumers.MAX_IN_FLIGHT", 1)
    llm: Any = runtime.current().llm
    handler = HangingHandler(llm, bot_names=("serdabot",))
    runtime.install(BotRuntime(llm, handler))
    worker = build_worker()
    task = asyncio.create_task(worker.arun())
    try:
        reply_channel = await layer_on.new_channel()
        for n in (9, 10, 11):
            await layer_on.send(WORKER_CHANNEL, event_message(ask(n), reply_channel))
        await asyncio.wait_for(handler.started.wait(), 10)
        await asyncio.sleep(0.2)  # the two others read, waiting for the one slot
        loop = asyncio.get_running_loop()
        assert await asyncio.wait_for(worker.drain(loop.time() + 0.3), 10) == 1
        assert handler.cancelled.is_set()
        await asyncio.sleep(0.2)
        assert not IN_FLIGHT
        assert handler.answers == 1
    finally:
        await cancel([task])


async def test_a_listener_that_stops_on_its_own_is_started_again(
    redis: PrivateRedis, layer_on: Any, caplog: pytest.LogCaptureFixture
) -> None:
    redis.start()
    worker = build_worker()
    assert isinstance(worker, ChatWorker)
    original = worker.get_or_create_application_instance
    failures: list[bool] = []

    def broken_once(*args: Any, **kwargs: Any) -> Any:
        if not failures:
            failures.append(True)
            raise RuntimeError("a bug past the listener's guard")
        return original(*args, **kwargs)

    worker.get_or_create_application_instance = broken_once
    task = asyncio.create_task(worker.arun())
    try:
        reply_channel = await layer_on.new_channel()
        await layer_on.send(WORKER_CHANNEL, event_message(ask(7), reply_channel))  # lost with the bug
        reply = await round_trip(layer_on, 8, reply_channel)
        assert reply["event_id"] == "w-8"
        assert failures == [True]
        assert any("listener stopped on its own" in r.getMessage() for r in caplog.records)
        # Stopped as runbot stops it: drained first, so the restarted listener ends too.
        loop = asyncio.get_running_loop()
        assert await asyncio.wait_for(worker.drain(loop.time() + 5), 10) == 0
    finally:
        await cancel([task])
