"""Between a chat platform and the workers, for any platform.

On the way in: which command a line carries, whether the channel has it enabled,
and the cooldown gate, before anything crosses the channel layer. On the way out:
each reply goes to its channel's rate-limited queue; the cooldown starts only once
the platform has taken the reply.

Exactly one reply per message the bot decided to answer: every event handed to the
workers is guarded. When no reply has come back `guard_after` seconds later (the
cascade's whole deadline plus a margin: a worker killed mid-answer, Redis gone, every
worker down), the relay answers it itself from the phrase cache this process holds,
and a worker's reply that comes later is dropped and counted. An event the layer
refuses (Redis down, channel full) is answered the same way at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from channels.layers import BaseChannelLayer

from chatbridge import gate, phrases
from chatbridge.adapters.base import LayerClient
from chatbridge.adapters.outbound import Outbound, Outgoing, Send
from chatbridge.adapters.recent import RecentIds
from chatbridge.adapters.status import AdapterStatus
from chatbridge.channel_settings import ChannelConfig, ChannelSettingsCache, settings_cache
from chatbridge.clock import Clock, SystemClock
from chatbridge.commands import ASK, CHILL, MENTION, Command
from chatbridge.config import RateLimit
from chatbridge.cooldowns import Cooldowns, Ticket
from chatbridge.events import ChatEvent, Reply
from chatbridge.sanitize import format_reply, limit_for
from fallbacks.services import LastPhrases
from llm.cascade.results import ASK_ERROR, ASK_TIMEOUT
from llm.cascade.switches import SwitchWatcher, live_switches
from serdabot.outage import RELAPSE, Outage, being_cancelled, describe, read_through

log = logging.getLogger("chatbridge.adapters")

# Events handed to the workers and not answered yet. Past this the oldest are answered
# here at once (a flood the workers cannot keep up with), never forgotten.
MAX_IN_FLIGHT = 2_000
# Chat events being written to the layer at once, and the pause after a failed read.
MAX_SUBMITTING = 16
LAYER_RETRY = 0.5
# The guard fires this long after the cascade's deadline: room for the worker's reply to
# cross the layer, while the guard's own reply still goes out within LLM_DEADLINE + 2 s.
GUARD_MARGIN = 1.5
# A relay closed for a reconnection waits this long for the workers' replies, then sends
# what it owes until SETTLE_SEND (seconds): the reconnection waits no longer than that.
SETTLE_ANSWER = 2.0
SETTLE_SEND = 4.0
# Ids of events the guard answered, to tell a late worker reply from a stray one.
LATE_MEMORY = 5_000


@dataclass(slots=True)
class Pending:
    """An event handed to the workers, until its reply comes back or the guard answers it."""

    event: ChatEvent
    command: Command
    ticket: Ticket
    timer: asyncio.TimerHandle


def guard_defaults() -> tuple[float, str]:
    """The cascade's deadline (plus what moderation may add after it) and the fallback mode,
    as the workers read them."""
    from llm.cascade.config import load_config
    from serdabot.env import SettingError

    try:
        config = load_config()
    except SettingError:
        # The workers refuse to start on a bad LLM setting and say why; the guard keeps
        # the defaults so chat still gets its one reply meanwhile.
        return 15.0 + after_the_model(), "fun"
    return config.deadline + after_the_model(), config.fallback_mode


def after_the_model() -> float:
    """What the workers may still spend on an answer once the cascade's deadline is over:
    OpenAI's moderation check, when it is on. (Blocked terms take well under a millisecond;
    a held answer's row waits at most a quarter of a second, within GUARD_MARGIN.)"""
    from django.conf import settings

    from chatbridge.moderation.openai_check import TIMEOUT

    return TIMEOUT if settings.MODERATION == "openai" else 0.0


def guard_intent(command: Command) -> str:
    """The phrase set for a reply the workers never sent: a question timed out, a control
    could not be applied, a mention or a custom command keeps its own phrases (as
    `CascadeResult.fallback_intent`; `!forget` has none and gets chill's)."""
    if command.intent == ASK:
        return ASK_TIMEOUT
    return ASK_ERROR if command.control else command.intent


NOTICES = {
    "fr": {
        ASK: "⏳ Surchauffe du CPU : encore {s} s avant ton prochain !ask.",
        CHILL: "⏳ Mode veille : encore {s} s avant ton prochain !chill.",
        MENTION: "⏳ Je refroidis mes circuits, reparle-moi dans {s} s.",
        "": "⏳ Encore {s} s avant ton prochain !{command}.",
    },
    "en": {
        ASK: "⏳ CPU overheating: {s} s before your next !ask.",
        CHILL: "⏳ Standby mode: {s} s before your next !chill.",
        MENTION: "⏳ Cooling my circuits, talk to me again in {s} s.",
        "": "⏳ {s} s before your next !{command}.",
    },
}


def cooldown_notice(platform: str, user: str, command: str, wait: float, language: str = "fr") -> str:
    texts = NOTICES.get(language, NOTICES["fr"])
    body = texts.get(command, texts[""]).format(s=max(math.ceil(wait), 1), command=command)
    return format_reply(user, body, limit_for(platform))


class Relay:
    def __init__(
        self,
        platform: str,
        *,
        send: Send,
        rate: Callable[[str], RateLimit],
        status: AdapterStatus,
        bot_names: Iterable[str] = (),
        layer: BaseChannelLayer | None = None,
        clock: Clock | None = None,
        settings: ChannelSettingsCache = settings_cache,
        cooldowns: Cooldowns | None = None,
        recent_ids: RecentIds | None = None,
        guard_after: float | None = None,
        fallback_mode: str | None = None,
        switches: SwitchWatcher = live_switches,
    ) -> None:
        self.platform = platform
        self.status = status
        self.bot_names = tuple(bot_names)
        self.settings = settings
        self.clock = clock or SystemClock()
        self.client = LayerClient(layer)
        self.cooldowns = cooldowns or Cooldowns(clock=self.clock.now)
        self.outbound = Outbound(
            send,
            rate=rate,
            backlog=lambda channel: self.settings.get(platform, channel).reply_queue_limit,
            clock=self.clock,
            on_sent=self._sent,
            on_dropped=self._dropped,
        )
        if guard_after is None or fallback_mode is None:
            deadline, mode = guard_defaults()
            guard_after = deadline + GUARD_MARGIN if guard_after is None else guard_after
            fallback_mode = mode if fallback_mode is None else fallback_mode
        self.guard_after = guard_after
        # FALLBACK_MODE: what applies while the admin's live switches leave it empty.
        self.fallback_mode = fallback_mode
        self.switches = switches
        self._pending: OrderedDict[str, Pending] = OrderedDict()
        self._answered_here: OrderedDict[str, None] = OrderedDict()
        self.recent_ids = recent_ids or RecentIds(self.clock.now)
        self.duplicates = 0  # commands delivered again by the platform, ignored
        self._submitting = asyncio.Semaphore(MAX_SUBMITTING)
        self._settled = asyncio.Event()  # set whenever the last pending event is settled
        self.taking = True  # False once shutting down: new events are not taken
        self.guarded = 0  # events this relay answered itself
        self.late = 0  # worker replies dropped because the guard had answered
        self._layer_down = False
        self._workers_late = False
        self._last_guarded = 0.0  # loop time the guard last answered for late workers
        # The last phrase each channel was sent, per phrase set (whichever process picked it).
        self.sent_phrases = LastPhrases()
        # Told of an event the workers decided to leave unanswered (their caches disagreed
        # with this relay's: `!serdabot off` just typed, an intent being edited). Chat needs
        # nothing then; a Discord slash command still needs its "thinking…" resolved.
        self.unanswered: Callable[[ChatEvent], None] | None = None

    def decide(self, event: ChatEvent, config: ChannelConfig) -> Command | None:
        return gate.decide(event, config, self.bot_names)

    async def incoming(self, event: ChatEvent) -> bool:
        """One chat line from the platform. True when it was handed to the workers."""
        if not self.taking:
            return False
        self.status.count_in()
        config = self.settings.get(self.platform, event.channel)
        command = self.decide(event, config)
        if command is None:
            return False
        if command.name == MENTION and not event.mentions_bot:
            # Matched one of this channel's extra names, which the handler does not know.
            event = dataclasses.replace(event, mentions_bot=True)
        if not event.message_id:
            event = dataclasses.replace(event, message_id=uuid.uuid4().hex)
        elif self.recent_ids.seen(event.message_id):
            # Its one reply (or cooldown notice) is already given or on its way.
            self.duplicates += 1
            log.info("%s: message %s delivered again: ignored", self.platform, event.message_id)
            return False

        user_seconds, channel_seconds = gate.cooldowns(command, config)
        verdict = self.cooldowns.check(
            self.platform,
            event.channel,
            event.user_id or event.user.lower(),
            command.name,
            user_seconds=user_seconds,
            channel_seconds=channel_seconds,
            bypass=config.moderators_bypass and (event.is_moderator or event.is_broadcaster),
            notice=config.cooldown_notice,
        )
        if verdict.ticket is None:
            self.status.count_cooldown()
            if verdict.notify:
                text = cooldown_notice(self.platform, event.user, command.name, verdict.wait, config.language)
                self.outbound.put(Outgoing(event.channel, event.channel_id, text, reply_to=event.message_id))
            return False

        # Guarded before it is handed over: a layer that hangs is covered by the same timer.
        self._guard(event, command, verdict.ticket)
        try:
            # A chat burst must not open one layer connection per line (Redis pools are finite).
            async with self._submitting:
                # ack: the worker answers even with nothing to say, so the reservation is released.
                submitted = await self.client.submit(event, ack=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._layer_down:
                self._layer_down = True
                log.warning(
                    "%s: chat events cannot reach the workers (%s): answering from this process's "
                    "phrases until the channel layer is back",
                    self.platform,
                    describe(exc),
                )
            submitted = False
        else:
            if self._layer_down and submitted:
                self._layer_down = False
                log.warning(
                    "%s: the channel layer is back: chat events reach the workers again", self.platform
                )
        if not submitted:
            self.answer_here(event.message_id)
        return submitted

    async def run(self) -> None:
        """Route the workers' replies to the outbound queues, until cancelled."""
        outage = Outage(f"{self.platform} replies", "the channel layer", log, first=LAYER_RETRY / 2)
        # The guard's fallback mode follows the admin's live switches: an adapter-only process
        # has no LLM service to watch them for it.
        async with self.switches.watching():
            while True:
                # Any error: the layer hiccuped (Redis restarting, pool exhausted), keep listening.
                event_id, reply = await read_through(self.client.receive, outage, (Exception,))
                self.replied(event_id, reply)

    def replied(self, event_id: str, reply: Reply | None) -> None:
        """A worker's reply (None: it had nothing to say) to an event this relay handed over."""
        pending = self._pop(event_id)
        if pending is None:
            if event_id in self._answered_here:
                # The guard answered already: a second reply would break "exactly one".
                self.late += 1
                self.status.count_dropped()
                log.info(
                    "%s: late worker reply to %s dropped (the adapter had answered)", self.platform, event_id
                )
            return
        # "In time again" only once the guard has been quiet a while: workers late on every
        # other message would otherwise flip the two lines on every message.
        if self._workers_late and asyncio.get_running_loop().time() - self._last_guarded >= RELAPSE:
            self._workers_late = False
            log.warning("%s: the workers answer in time again", self.platform)
        if reply is None:
            self.cooldowns.release(pending.ticket)
            if self.unanswered is not None:
                self.unanswered(pending.event)
            return
        text = self._not_again(pending.event, reply)
        self.outbound.put(Outgoing(reply.channel, reply.channel_id, text, reply.reply_to, pending.ticket))

    def _not_again(self, event: ChatEvent, reply: Reply) -> str:
        """The reply's text, with another phrase of its set if the channel just got this one.

        Each worker remembers the phrases it picked; with several workers, two of them may
        pick the same one for one channel in a row. Every reply of a channel goes through
        this relay: it keeps what each channel was last sent, and picks again on a repeat.
        """
        if not reply.phrase or reply.fallback_intent is None:
            return reply.text
        key = (f"{self.platform}:{event.channel}", reply.fallback_intent)
        if self.sent_phrases.last(key) != reply.phrase:
            self.sent_phrases.note(key, reply.phrase)
            return reply.text
        # A phrase (not a fixed text) means the worker answered in the fun mode: pick again in
        # it, whatever this process's snapshot says of the channel's mode (it may lag).
        config = dataclasses.replace(self.settings.get(self.platform, event.channel), fallback_mode="fun")
        picked = phrases.pick(event, reply.fallback_intent, config, "fun", memory=self.sent_phrases)
        if picked.intent != reply.fallback_intent:
            return reply.text  # the set changed meanwhile (an edit): keep the worker's
        return format_reply(event.user, picked.body, limit_for(self.platform))

    def answer_here(self, event_id: str) -> bool:
        """Answer a pending event from this process's phrases instead of a worker's reply."""
        pending = self._pop(event_id)
        if pending is None:
            return False
        event, command = pending.event, pending.command
        config = self.settings.get(self.platform, event.channel)
        picked = phrases.pick(
            event,
            guard_intent(command),
            config,
            self.switches.fallback_mode(self.fallback_mode),
            command=command,
            memory=self.sent_phrases,
        )
        text = format_reply(event.user, picked.body, limit_for(self.platform))
        self.guarded += 1
        self._answered_here[event_id] = None
        while len(self._answered_here) > LATE_MEMORY:
            self._answered_here.popitem(last=False)
        self.outbound.put(Outgoing(event.channel, event.channel_id, text, event.message_id, pending.ticket))
        return True

    def stop_taking(self) -> None:
        """Shutting down: new chat events are not taken; pending ones still get their reply."""
        self.taking = False

    async def drain(self, until: float, answer_by: float | None = None) -> int:
        """Wait (until the loop time `answer_by`, `until` by default) for the workers' replies,
        answer the rest here, then send what the rate limits allow until `until`. The number
        of replies left unsent."""
        loop = asyncio.get_running_loop()
        answer_by = until if answer_by is None else min(answer_by, until)
        while self._pending and loop.time() < answer_by:
            self._settled.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(answer_by - loop.time()):
                    await self._settled.wait()
        for event_id in list(self._pending):
            self.answer_here(event_id)
        return await self.outbound.drain(until)

    async def settle(self) -> None:
        """Before this relay is closed for a reconnection: what it owes is answered (the workers'
        replies that come within SETTLE_ANSWER s, this process's phrases for the rest) and sent
        while the platform's REST side still works. A new relay knows none of these events, so
        without this they would get no reply at all. Cancelled (shutdown), it leaves at once:
        shut_down has drained already."""
        if being_cancelled() or not (self._pending or self.outbound.queued):
            return
        loop = asyncio.get_running_loop()
        self.stop_taking()
        # What is still queued after it is counted by close(), in its one line.
        with contextlib.suppress(Exception):
            await self.drain(loop.time() + SETTLE_SEND, answer_by=loop.time() + SETTLE_ANSWER)

    async def close(self) -> None:
        self.taking = False  # a line that arrives while the outboxes close is not taken
        for pending in self._pending.values():
            pending.timer.cancel()
            self.cooldowns.release(pending.ticket)
        self._pending.clear()
        self._settled.set()
        await self.outbound.close()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _guard(self, event: ChatEvent, command: Command, ticket: Ticket) -> None:
        timer = asyncio.get_running_loop().call_later(self.guard_after, self._expired, event.message_id)
        self._pending[event.message_id] = Pending(event, command, ticket, timer)
        while len(self._pending) > MAX_IN_FLIGHT:
            self.answer_here(next(iter(self._pending)))

    def _expired(self, event_id: str) -> None:
        if event_id not in self._pending:
            return
        self._last_guarded = asyncio.get_running_loop().time()
        if not self._workers_late:
            self._workers_late = True
            log.warning(
                "%s: no reply from the workers within %.1f s: answering from this process's phrases",
                self.platform,
                self.guard_after,
            )
        self.answer_here(event_id)

    def _pop(self, event_id: str) -> Pending | None:
        pending = self._pending.pop(event_id, None)
        if pending is not None:
            pending.timer.cancel()
            if not self._pending:
                self._settled.set()
        return pending

    def _sent(self, message: Outgoing) -> None:
        self.status.count_out()
        if message.ticket is not None:
            self.cooldowns.sent(message.ticket)

    def _dropped(self, message: Outgoing, reason: str) -> None:
        self.status.count_dropped()
        if message.ticket is not None:
            self.cooldowns.release(message.ticket)
