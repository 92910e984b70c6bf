"""The bot's runtime in one process: the LLM service and the handler, started once.

`runbot` and `chat` build one, start it (boot detection), and install it so the
worker consumer finds the handler.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.conf import settings

from chatbridge.channel_settings import settings_cache
from chatbridge.controls import Status
from chatbridge.handler import Handler
from chatbridge.memory import memory_from_settings
from chatbridge.moderation.check import Moderator
from chatbridge.moderation.terms import blocked_terms
from chatbridge.prompts import load_prompts
from fallbacks import services as fallbacks
from llm.cascade.service import LLMService
from serdabot.database import database_label, ping
from serdabot.outage import connection_errors, describe
from serdabot.tasks import cancel_and_wait

log = logging.getLogger("chatbridge.runtime")


# While the database is unreachable at start, how often the caches try it again.
RELOAD_FIRST = 1.0
RELOAD_CAP = 10.0


class BotRuntime:
    def __init__(self, llm: LLMService, handler: Handler) -> None:
        self.llm = llm
        self.handler = handler
        self._reload: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls) -> BotRuntime:
        llm = LLMService.from_settings()
        prompts = load_prompts()
        # Warm-ups read the same system prompt as chat: a model slow to read it must not pass one.
        llm.warmups.system_prompt = prompts.get("ask", "")
        handler = Handler(
            llm,
            bot_names=(settings.BOT_NAME,),
            fallback_mode=llm.config.fallback_mode,
            prompts=prompts,
            memory=memory_from_settings(),
            moderator=Moderator.from_settings(llm),
            status=lambda: llm_status(llm),
        )
        return cls(llm, handler)

    async def start(self, *, process: str) -> None:
        try:
            await sync_to_async(ping, thread_sensitive=True)()
        except connection_errors() as exc:
            # The bot answers anyway (`chat` on a dead database): said once, here, rather
            # than by each cache in turn; the history writer waits for it quietly.
            log.warning(
                "%s unreachable (%s): answering with built-in phrases and default channel settings; "
                "history waits in memory until it is back",
                database_label(),
                describe(exc),
            )
            fallbacks.database_unreachable()
            self.llm.recorder.database_unreachable(exc)
            self.llm.switches.outage.failed(exc, announced=True)  # the live switches keep quiet too
            self._reload = asyncio.create_task(self._load_when_back(), name="caches-reload")
        else:
            await self._load_caches()
        await self.llm.start(process=process)

    async def _load_caches(self) -> None:
        # Phrases and channel settings are read once here so the hot path only touches memory.
        # Each keeps what it has (built-in phrases, defaults) if the database fails meanwhile.
        await sync_to_async(fallbacks.warm)()
        await settings_cache.refresh()
        await blocked_terms.refresh()

    async def _load_when_back(self) -> None:
        """Read the phrases and channel settings once the database that was down at start answers."""
        delay = RELOAD_FIRST
        while True:
            await asyncio.sleep(delay)
            try:
                await sync_to_async(ping, thread_sensitive=True)()
            except connection_errors():
                delay = min(delay * 2, RELOAD_CAP)
                continue
            await self._load_caches()
            log.info("%s answers again: phrases and channel settings loaded", database_label())
            return

    async def stop(self) -> None:
        if self._reload is not None:
            await cancel_and_wait([self._reload])
            self._reload = None
        await self.llm.stop()
        await self.handler.memory.aclose()
        await self.handler.moderator.aclose()


def llm_status(llm: LLMService) -> Status:
    """What `!serdabot status` says: each tier's state, the mode, and what the budget leaves."""
    left = ""
    if llm.openai is not None:
        today = llm.budget.today() if llm.budget is not None else None
        if today is None or (today.request_limit is None and today.token_limit is None):
            left = "∞"
        else:
            parts = []
            if today.request_limit is not None:
                parts.append(f"{max(today.request_limit - today.requests, 0)} req")
            if today.token_limit is not None:
                parts.append(f"{max(today.token_limit - today.tokens, 0)} tokens")
            left = ", ".join(parts)
    return Status(tiers=llm.states(), mode=llm.live.off or llm.live.llm_mode, budget_left=left)


_current: BotRuntime | None = None


def install(runtime: BotRuntime | None) -> None:
    global _current
    _current = runtime


def current() -> BotRuntime:
    if _current is None:
        raise RuntimeError("no bot runtime in this process: start one with runbot or chat")
    return _current
