"""Helpers shared by the llm app's tests: short-timeout configs, history reads, bounded polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import models

from llm.cascade.config import LLMConfig
from llm.cascade.service import LLMService
from llm.history.recorder import HistoryRecorder

M = TypeVar("M", bound=models.Model)

# Looks like a real key (not a placeholder); fake servers accept anything.
TEST_KEY = "sk-test-" + "0123456789abcdef" * 3
# Timeouts short enough for a fast suite, long enough for a loaded CI machine.
TIMEOUT = 0.5
DEADLINE = 2.0
PROBE_INTERVAL = 0.2
# What "a reply within the deadline" may overrun by (scheduling, logging, a loaded CI).
MARGIN = 0.5


def llm_config(local_url: str, openai_url: str | None = None, **overrides: Any) -> LLMConfig:
    values: dict[str, Any] = {
        "endpoint": local_url,
        "model": "fake-model",
        # A whole answer may take longer than its first token or a gap between chunks.
        "timeout": TIMEOUT * 2,
        "connect_timeout": TIMEOUT,
        "first_token_timeout": TIMEOUT,
        "stall_timeout": TIMEOUT,
        "deadline": DEADLINE,
        "probe_interval": PROBE_INTERVAL,
        "probe_kind": "completion",
        "breaker_cooldown": 60.0,  # recovery comes from probes in these tests, not half-open trials
        "openai_model": "fake-model",
    }
    if openai_url is not None:
        values.update(openai_api_key=TEST_KEY, openai_base_url=openai_url)
    values.update(overrides)
    return LLMConfig(**values)


def recorder(**kwargs: Any) -> HistoryRecorder:
    kwargs.setdefault("use_default_layer", False)
    return HistoryRecorder(**kwargs)


def service(config: LLMConfig, **kwargs: Any) -> LLMService:
    return LLMService(config, recorder(**kwargs))


async def ask(llm: LLMService, prompt: str = "c'est quoi Python ?", *, intent: str = "ask", **kwargs: Any):
    return await llm.complete(
        intent=intent, system_prompt="Réponds court.", prompt=prompt, platform="console", **kwargs
    )


async def rows(model: type[M], **filters: Any) -> list[M]:
    """Rows of a history model, oldest first (after the recorder was flushed)."""
    return await sync_to_async(
        lambda: list(model._default_manager.filter(**filters).order_by("created", "pk"))
    )()


async def eventually(check: Callable[[], Any], *, within: float, every: float = 0.02) -> Any:
    """Poll `check` (sync or async) until it returns something truthy; fail after `within` seconds."""
    end = time.monotonic() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"not true within {within} s")
        await asyncio.sleep(every)
