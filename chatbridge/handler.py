"""The one handler: decides whether a chat event gets a reply, and which.

Platform-neutral. The cascade (`llm`) answers or says it cannot; the fallback
phrases (`fallbacks`) always have something to say.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Protocol

from chatbridge.channel_settings import ChannelSettingsCache, settings_cache
from chatbridge.commands import ASK, Command, parse
from chatbridge.events import ChatEvent, Reply
from chatbridge.prompts import DEFAULTS as DEFAULT_PROMPTS
from chatbridge.sanitize import format_reply, limit_for
from fallbacks.services import choose_fallback
from llm.cascade.results import ASK_ERROR, CascadeResult
from llm.cascade.switches import SwitchWatcher, live_switches

log = logging.getLogger("chatbridge.handler")

USAGE = "Usage : !ask <ta question>. Je suis un bot, pas un devin 🔮"
# The fallback_intent of the usage hint: a fixed text, from no phrase set and no model.
USAGE_INTENT = "usage"


class Answerer(Protocol):
    async def complete(
        self,
        *,
        intent: str,
        system_prompt: str,
        prompt: str,
        platform: str,
        channel: str = "",
        user: str = "",
        max_chars: int = 500,
    ) -> CascadeResult: ...


class Handler:
    def __init__(
        self,
        llm: Answerer,
        *,
        bot_names: Iterable[str] = ("serdabot",),
        fallback_mode: str = "fun",
        prompts: Mapping[str, str] | None = None,
        channel_settings: ChannelSettingsCache = settings_cache,
        switches: SwitchWatcher = live_switches,
    ) -> None:
        self.llm = llm
        self.bot_names = tuple(bot_names)
        # FALLBACK_MODE: what applies while the admin's live switches leave it empty.
        self.fallback_mode = fallback_mode
        self.switches = switches
        self.prompts = dict(prompts or DEFAULT_PROMPTS)
        # In memory (loaded at start, reloaded on save): no database read per message.
        self.channel_settings = channel_settings

    def decide(self, event: ChatEvent) -> Command | None:
        config = self.channel_settings.get(event.platform, event.channel)
        names = (*self.bot_names, *config.extra_names)
        command = parse(event.text, names, mentions_bot=event.mentions_bot)
        if command is None or command.name not in config.commands:
            return None
        return command

    async def handle(self, event: ChatEvent) -> Reply | None:
        command = self.decide(event)
        return None if command is None else await self.answer(event, command)

    async def answer(self, event: ChatEvent, command: Command) -> Reply:
        """The reply to a line `decide()` found a command in."""
        started = time.perf_counter()
        limit = limit_for(event.platform)
        if command.intent == ASK and not command.prompt:
            # An empty question costs no model call.
            return self._reply(
                event, command, USAGE, "fallback", started, limit, fallback_intent=USAGE_INTENT
            )

        # Room left for the body once "@user " is in front.
        room = limit - len(event.user) - 2
        result = await self.llm.complete(
            intent=command.intent,
            system_prompt=self.prompts.get(command.intent, DEFAULT_PROMPTS[ASK]),
            prompt=command.prompt,
            platform=event.platform,
            channel=event.channel,
            user=event.user,
            max_chars=max(room, 50),
        )
        tiers = tuple(tier.as_dict() for tier in result.tiers)
        if result.text:
            return self._reply(
                event,
                command,
                result.text,
                result.source,
                started,
                limit,
                first_token_ms=result.first_token_ms,
                tiers=tiers,
            )

        fallback_intent = self._fallback_intent(command, result)
        tag = f"[{command.intent.upper()}]"
        if result.attempted:
            log.info("%s all LLMs unavailable (%s) -> fallback %s", tag, _errors(result), fallback_intent)
        else:
            log.info("%s no LLM usable -> fallback %s, no network call", tag, fallback_intent)
        return self._fallback_reply(event, command, fallback_intent, started, limit, tiers)

    def failed(self, event: ChatEvent, command: Command) -> Reply:
        """The reply when answering raised: an error phrase for a question, its own phrases
        for a mention or a custom command. Never silence: the console and the web chat wait
        for a reply, and an empty one would end the adapter's guard without a word."""
        intent = ASK_ERROR if command.intent == ASK else command.intent
        return self._fallback_reply(event, command, intent, time.perf_counter(), limit_for(event.platform))

    def _fallback_reply(
        self,
        event: ChatEvent,
        command: Command,
        intent: str,
        started: float,
        limit: int,
        tiers: tuple[dict[str, object], ...] = (),
    ) -> Reply:
        """A phrase of `intent`, in the channel's fallback mode (the bot's when it has none)."""
        channel_mode = self.channel_settings.get(event.platform, event.channel).fallback_mode
        mode = channel_mode or self.switches.fallback_mode(self.fallback_mode)
        fallback = choose_fallback(intent, mode)
        return self._reply(
            event,
            command,
            fallback.text,
            "fallback",
            started,
            limit,
            fallback_intent=fallback.intent,
            tiers=tiers,
        )

    @staticmethod
    def _fallback_intent(command: Command, result: CascadeResult) -> str:
        # ask_timeout and ask_error speak of a question ("J'ai réfléchi trop longtemps…"):
        # a mention whose cascade failed still gets a chill phrase, and a custom intent its own.
        # The rule lives with the result, so the call history records the same set.
        return result.fallback_intent(command.intent) or command.intent

    @staticmethod
    def _reply(
        event: ChatEvent,
        command: Command,
        body: str,
        source: str,
        started: float,
        limit: int,
        *,
        fallback_intent: str | None = None,
        first_token_ms: float | None = None,
        tiers: tuple[dict[str, object], ...] = (),
    ) -> Reply:
        return Reply(
            platform=event.platform,
            channel=event.channel,
            user=event.user,
            text=format_reply(event.user, body, limit),
            source=source,
            intent=command.intent,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            reply_to=event.message_id,
            channel_id=event.channel_id,
            command=command.name,
            fallback_intent=fallback_intent,
            first_token_ms=first_token_ms,
            tiers=tiers,
        )


def _errors(result: CascadeResult) -> str:
    return ", ".join(f"{tier}: {error}" for tier, error in result.errors.items()) or "no detail"
