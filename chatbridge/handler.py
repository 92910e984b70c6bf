"""The one handler: decides whether a chat event gets a reply, and which.

Platform-neutral. The cascade (`llm`) answers or says it cannot; the fallback
phrases (`fallbacks`) always have something to say. What the model says is checked
(`chatbridge.moderation`) before it goes out; a held answer is replaced by a phrase
of the `blocked` intent and kept for moderators.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from chatbridge import gate, phrases, prompting
from chatbridge.channel_settings import ChannelConfig, ChannelSettingsCache, settings_cache
from chatbridge.commands import ASK, FORGET, MODEL_COMMANDS, Command
from chatbridge.controls import Controls, Status, StatusSource, memory_key
from chatbridge.events import ChatEvent, Reply
from chatbridge.memory import InProcessMemory, Memory
from chatbridge.moderation.check import Moderator
from chatbridge.moderation.held import hold
from chatbridge.moderation.models import HeldReply
from chatbridge.prompts import DEFAULTS as DEFAULT_PROMPTS
from chatbridge.sanitize import chat_body, format_reply, limit_for
from llm.cascade.results import ASK_ERROR, CascadeResult
from llm.cascade.switches import SwitchWatcher, live_switches

log = logging.getLogger("chatbridge.handler")

USAGE = "Usage : !ask <ta question>. Je suis un bot, pas un devin 🔮"
USAGE_TEXTS = {"fr": USAGE, "en": "Usage: !ask <your question>. I'm a bot, not a fortune teller 🔮"}
FORGOTTEN = {
    "fr": "Mémoire effacée 🧽 On repart de zéro, enchanté !",
    "en": "Memory wiped 🧽 Fresh start, nice to meet you!",
}
NOTHING_REMEMBERED = {
    "fr": "Rien à oublier : ma mémoire de toi est déjà vide 🫙",
    "en": "Nothing to forget: my memory of you is already empty 🫙",
}
# The fallback_intent of the usage hint: a fixed text, from no phrase set and no model.
USAGE_INTENT = "usage"
# The phrase set that replaces an answer moderation held back.
BLOCKED_INTENT = "blocked"
# Seconds a held answer's row may hold up the reply that replaces it (then it is written behind).
HOLD_WAIT = 0.25
# Reply.source of the bot's own texts (controls, !forget): neither a model nor a phrase set.
BOT_SOURCE = "bot"


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
        history: Sequence[tuple[str, str]] = (),
    ) -> CascadeResult: ...


def no_status() -> Status | None:
    return None


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
        memory: Memory | None = None,
        moderator: Moderator | None = None,
        status: StatusSource = no_status,
    ) -> None:
        self.llm = llm
        self.bot_names = tuple(bot_names)
        # FALLBACK_MODE: what applies while the admin's live switches leave it empty.
        self.fallback_mode = fallback_mode
        self.switches = switches
        self.prompts = dict(prompts or DEFAULT_PROMPTS)
        # In memory (loaded at start, reloaded on save): no database read per message.
        self.channel_settings = channel_settings
        self.memory: Memory = memory if memory is not None else InProcessMemory()
        self.moderator = moderator if moderator is not None else Moderator()
        self.controls = Controls(self.memory, status)
        self._holds: set[asyncio.Task[None]] = set()  # held answers still being written

    def decide(self, event: ChatEvent) -> Command | None:
        return gate.decide(event, self.channel_settings.get(event.platform, event.channel), self.bot_names)

    async def handle(self, event: ChatEvent) -> Reply | None:
        command = self.decide(event)
        return None if command is None else await self.answer(event, command)

    async def answer(self, event: ChatEvent, command: Command) -> Reply:
        """The reply to a line `decide()` found a command in."""
        started = time.perf_counter()
        config = self.channel_settings.get(event.platform, event.channel)
        if command.control:
            body = await self.controls.run(event, command.prompt, config)
            return self._reply(event, command, body, BOT_SOURCE, started)
        if command.name == FORGET:
            forgotten = await self.memory.forget(event.platform, event.channel, memory_key(event))
            said = _say(FORGOTTEN if forgotten else NOTHING_REMEMBERED, config)
            return self._reply(event, command, said, BOT_SOURCE, started)
        spec = command.custom
        if spec is not None and not spec.ask_model:
            return self._fallback_reply(event, command, config, command.intent, started)
        if command.intent == ASK and not command.prompt:
            # An empty question costs no model call.
            usage = _say(USAGE_TEXTS, config)
            return self._reply(event, command, usage, "fallback", started, fallback_intent=USAGE_INTENT)
        if not config.llm_enabled:
            # `!serdabot llm off`: phrases only, and not a word to the model.
            return self._fallback_reply(event, command, config, command.intent, started)
        return await self._ask_model(event, command, config, started)

    async def _ask_model(
        self, event: ChatEvent, command: Command, config: ChannelConfig, started: float
    ) -> Reply:
        question = prompting.clean_question(command.prompt)
        term = self.moderator.check_question(event.platform, event.channel, question)
        if term is not None:
            await self._hold(event, HeldReply.Reason.BLOCKED_QUESTION, term, question, "")
            return self._fallback_reply(event, command, config, BLOCKED_INTENT, started)

        spec = command.custom
        system_prompt = prompting.system_prompt(
            config,
            ASK if spec is not None else command.intent,
            custom=spec.prompt if spec is not None else "",
            stream_title=event.stream_title,
            stream_game=event.stream_game,
            base=self.prompts,
        )
        remembered = command.name in MODEL_COMMANDS
        user = memory_key(event)
        history = await self.memory.recall(event.platform, event.channel, user) if remembered else []
        # Room left for the body once "@user " is in front.
        room = limit_for(event.platform) - len(event.user) - 2
        result = await self.llm.complete(
            intent=command.intent,
            system_prompt=system_prompt,
            prompt=prompting.user_message(event.user, question),
            platform=event.platform,
            channel=event.channel,
            user=event.user,
            max_chars=max(room, 50),
            history=prompting.delimited_history(event.user, history),
        )
        tiers = tuple(tier.as_dict() for tier in result.tiers)
        if result.text:
            verdict = await self.moderator.check_answer(
                platform=event.platform,
                channel=event.channel,
                answer=result.text,
                # The private part only: the bot may say who it is and what the stream is.
                system_prompt=prompting.private_part(
                    config,
                    ASK if spec is not None else command.intent,
                    custom=spec.prompt if spec is not None else "",
                    base=self.prompts,
                ),
                allow_links=config.allow_links,
            )
            if verdict.held:
                log.info(
                    "[%s] answer held (%s) in %s/%s",
                    command.intent.upper(),
                    verdict.reason,
                    event.platform,
                    event.channel,
                )
                await self._hold(event, verdict.reason, verdict.term, question, result.text)
                return self._fallback_reply(event, command, config, BLOCKED_INTENT, started, tiers)
            # The fence copied back («««, »»»), a leading "/" or "." dropped: what chat will
            # read, and so what the model is reminded it said.
            said = chat_body(prompting.unfenced(verdict.text))
            if not said:
                # Nothing left once the links went (the whole answer was one): the model did
                # answer, so not a "my brain is down" phrase.
                return self._fallback_reply(event, command, config, BLOCKED_INTENT, started, tiers)
            if remembered:
                await self.memory.remember(event.platform, event.channel, user, question, said)
            return self._reply(
                event,
                command,
                said,
                result.source,
                started,
                first_token_ms=result.first_token_ms,
                tiers=tiers,
            )

        fallback_intent = self._fallback_intent(command, result)
        tag = f"[{command.intent.upper()}]"
        if result.attempted:
            log.info("%s all LLMs unavailable (%s) -> fallback %s", tag, _errors(result), fallback_intent)
        else:
            log.info("%s no LLM usable -> fallback %s, no network call", tag, fallback_intent)
        return self._fallback_reply(event, command, config, fallback_intent, started, tiers)

    def failed(self, event: ChatEvent, command: Command) -> Reply:
        """The reply when answering raised: an error phrase for a question, its own phrases
        for a mention or a custom command. Never silence: the console and the web chat wait
        for a reply, and an empty one would end the adapter's guard without a word."""
        intent = ASK_ERROR if command.intent == ASK or command.control else command.intent
        config = self.channel_settings.get(event.platform, event.channel)
        return self._fallback_reply(event, command, config, intent, time.perf_counter())

    async def _hold(self, event: ChatEvent, reason: str, term: str, question: str, answer: str) -> None:
        """Keep the held answer for moderators, waiting at most HOLD_WAIT for the database: a
        slow one finishes the row in the background, and the viewer's reply goes out now."""
        task = asyncio.create_task(
            hold(
                platform=event.platform,
                channel=event.channel,
                user=event.user,
                reason=reason,
                term=term,
                question=question,
                answer=answer,
            )
        )
        self._holds.add(task)
        task.add_done_callback(self._holds.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), HOLD_WAIT)

    def _fallback_reply(
        self,
        event: ChatEvent,
        command: Command,
        config: ChannelConfig,
        intent: str,
        started: float,
        tiers: tuple[dict[str, object], ...] = (),
    ) -> Reply:
        """A phrase of `intent`, in the channel's fallback mode (the bot's when it has none)."""
        picked = phrases.pick(
            event, intent, config, self.switches.fallback_mode(self.fallback_mode), command=command
        )
        return self._reply(
            event,
            command,
            picked.body,
            "fallback",
            started,
            fallback_intent=picked.intent,
            tiers=tiers,
            phrase=picked.phrase,
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
        *,
        fallback_intent: str | None = None,
        first_token_ms: float | None = None,
        tiers: tuple[dict[str, object], ...] = (),
        phrase: str = "",
    ) -> Reply:
        return Reply(
            platform=event.platform,
            channel=event.channel,
            user=event.user,
            text=format_reply(event.user, body, limit_for(event.platform)),
            source=source,
            intent=command.intent,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            reply_to=event.message_id,
            channel_id=event.channel_id,
            command=command.name,
            fallback_intent=fallback_intent,
            first_token_ms=first_token_ms,
            tiers=tiers,
            phrase=phrase,
        )


def _say(texts: Mapping[str, str], config: ChannelConfig) -> str:
    return texts.get(config.language, texts["fr"])


def _errors(result: CascadeResult) -> str:
    return ", ".join(f"{tier}: {error}" for tier, error in result.errors.items()) or "no detail"
