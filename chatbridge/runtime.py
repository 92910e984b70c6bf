"""The bot's runtime in one process: the LLM service and the handler, started once.

`runbot` and `chat` build one, start it (boot detection), and install it so the
worker consumer finds the handler.
"""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.conf import settings

from chatbridge.channel_settings import settings_cache
from chatbridge.handler import Handler
from chatbridge.prompts import load_prompts
from fallbacks import services as fallbacks
from llm.service import LLMService

log = logging.getLogger("chatbridge.runtime")


class BotRuntime:
    def __init__(self, llm: LLMService, handler: Handler) -> None:
        self.llm = llm
        self.handler = handler

    @classmethod
    def from_settings(cls) -> BotRuntime:
        llm = LLMService.from_settings()
        handler = Handler(
            llm,
            bot_names=(settings.BOT_NAME,),
            fallback_mode=llm.config.fallback_mode,
            prompts=load_prompts(),
        )
        return cls(llm, handler)

    async def start(self, *, process: str) -> None:
        # Phrases and channel settings are read once here so the hot path only touches memory.
        await sync_to_async(fallbacks.warm)()
        await settings_cache.refresh()
        await self.llm.start(process=process)

    async def stop(self) -> None:
        await self.llm.stop()


_current: BotRuntime | None = None


def install(runtime: BotRuntime | None) -> None:
    global _current
    _current = runtime


def current() -> BotRuntime:
    if _current is None:
        raise RuntimeError("no bot runtime in this process: start one with runbot or chat")
    return _current
