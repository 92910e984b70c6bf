"""A running bot for the adapter tests: real channel layer, worker, handler and LLM service.

The LLM service is real with LLM_MODE=disabled, so every answer is a fallback phrase
and no model is called. Only the chat platforms are fakes (tests/fakes/).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from asgiref.sync import sync_to_async
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer

from chatbridge import runtime
from chatbridge.bot import cancel
from chatbridge.channel_settings import settings_cache
from chatbridge.handler import Handler
from chatbridge.runtime import BotRuntime
from chatbridge.worker import build_worker
from fallbacks import services as fallbacks
from serdabot.tasks import cancel_and_wait
from tests.conftest import disabled_llm


@contextlib.asynccontextmanager
async def running_bot() -> AsyncIterator[Any]:
    # The project's own layer (the worker's consumer replies through it), built afresh for this
    # test's event loop: a Redis layer keeps per-loop state that a closed loop leaves broken.
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    layer = get_channel_layer()
    await layer.flush()  # nothing left over from an earlier test
    llm: Any = disabled_llm()
    await sync_to_async(fallbacks.warm)()
    runtime.install(BotRuntime(llm, Handler(llm, bot_names=("serdabot",))))
    worker = asyncio.create_task(build_worker().arun())
    try:
        yield layer
    finally:
        await cancel([worker])  # redis-py turns a cancelled read into its own TimeoutError
        runtime.install(None)
        settings_cache.clear()  # this test's rows are gone with its database
        if hasattr(layer, "close_pools"):
            await layer.close_pools()
        channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)


@contextlib.asynccontextmanager
async def running(adapter: Any, *, deadline: float = 15.0) -> AsyncIterator[asyncio.Task[None]]:
    """Run an adapter until the block ends; fail at once if it dies while starting."""
    task = asyncio.create_task(adapter.run())
    ready = asyncio.ensure_future(adapter.connected.wait())
    try:
        await asyncio.wait([task, ready], timeout=deadline, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # raises the start-up error
            raise AssertionError("the adapter stopped during start-up")
        assert ready.done(), "the adapter did not connect"
        yield task
    finally:
        ready.cancel()
        await cancel_and_wait([task])
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def eventually(check: Callable[[], object], what: str = "", deadline: float = 15.0) -> None:
    """Wait until `check()` is true (a deadline against hangs, not a timing assertion)."""
    give_up = time.monotonic() + deadline
    while not check():
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.01)
