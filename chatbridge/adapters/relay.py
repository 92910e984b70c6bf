"""Between a chat platform and the workers, for any platform.

On the way in: which command a line carries, whether the channel has it enabled,
and the cooldown gate, before anything crosses the channel layer. On the way out:
each reply goes to its channel's rate-limited queue; the cooldown starts only once
the platform has taken the reply.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable

from channels.layers import BaseChannelLayer

from chatbridge.adapters.base import LayerClient
from chatbridge.adapters.outbound import Outbound, Outgoing, Send
from chatbridge.adapters.status import AdapterStatus
from chatbridge.channel_settings import ChannelConfig, ChannelSettingsCache, settings_cache
from chatbridge.clock import Clock, SystemClock
from chatbridge.commands import ASK, CHILL, MENTION, Command, parse
from chatbridge.config import RateLimit
from chatbridge.cooldowns import Cooldowns, Ticket
from chatbridge.events import ChatEvent
from chatbridge.sanitize import format_reply, limit_for

log = logging.getLogger("chatbridge.adapters")

# Events handed to the workers and not answered yet. Past this the oldest are
# forgotten: their cooldown reservations expire on their own.
MAX_IN_FLIGHT = 2_000
# Chat events being written to the layer at once, and the pause after a failed read.
MAX_SUBMITTING = 16
LAYER_RETRY = 0.5

NOTICES = {
    ASK: "⏳ Surchauffe du CPU : encore {s} s avant ton prochain !ask.",
    CHILL: "⏳ Mode veille : encore {s} s avant ton prochain !chill.",
    MENTION: "⏳ Je refroidis mes circuits, reparle-moi dans {s} s.",
}


def cooldown_notice(platform: str, user: str, command: str, wait: float) -> str:
    body = NOTICES.get(command, NOTICES[ASK]).format(s=max(math.ceil(wait), 1))
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
        self._tickets: OrderedDict[str, Ticket] = OrderedDict()
        self._submitting = asyncio.Semaphore(MAX_SUBMITTING)

    def decide(self, event: ChatEvent, config: ChannelConfig) -> Command | None:
        command = parse(event.text, (*self.bot_names, *config.extra_names), mentions_bot=event.mentions_bot)
        if command is None or command.name not in config.commands:
            return None
        return command

    async def incoming(self, event: ChatEvent) -> bool:
        """One chat line from the platform. True when it was handed to the workers."""
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

        verdict = self.cooldowns.check(
            self.platform,
            event.channel,
            event.user_id or event.user.lower(),
            command.name,
            user_seconds=config.user_cooldown,
            channel_seconds=config.channel_cooldown,
            bypass=config.moderators_bypass and (event.is_moderator or event.is_broadcaster),
            notice=config.cooldown_notice,
        )
        if verdict.ticket is None:
            self.status.count_cooldown()
            if verdict.notify:
                text = cooldown_notice(self.platform, event.user, command.name, verdict.wait)
                self.outbound.put(Outgoing(event.channel, event.channel_id, text, reply_to=event.message_id))
            return False

        self._remember(event.message_id, verdict.ticket)
        try:
            # A chat burst must not open one layer connection per line (Redis pools are finite).
            async with self._submitting:
                # ack: the worker answers even with nothing to say, so the reservation is released.
                submitted = await self.client.submit(event, ack=True)
        except Exception as exc:
            log.warning("%s: chat event not handed to the workers (%s)", self.platform, type(exc).__name__)
            submitted = False
        if not submitted:
            self._settle(event.message_id)
        return submitted

    async def run(self) -> None:
        """Route the workers' replies to the outbound queues, until cancelled."""
        while True:
            try:
                event_id, reply = await self.client.receive()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The layer hiccuped (Redis restarting, pool exhausted): keep listening.
                log.warning("%s: reply channel read failed (%s); retrying", self.platform, type(exc).__name__)
                await asyncio.sleep(LAYER_RETRY)
                continue
            ticket = self._tickets.pop(event_id, None)
            if reply is None:
                if ticket is not None:
                    self.cooldowns.release(ticket)
                continue
            self.outbound.put(Outgoing(reply.channel, reply.channel_id, reply.text, reply.reply_to, ticket))

    async def close(self) -> None:
        await self.outbound.close()
        for ticket in self._tickets.values():
            self.cooldowns.release(ticket)
        self._tickets.clear()

    def _remember(self, event_id: str, ticket: Ticket) -> None:
        self._tickets[event_id] = ticket
        while len(self._tickets) > MAX_IN_FLIGHT:
            self._tickets.popitem(last=False)

    def _settle(self, event_id: str) -> None:
        ticket = self._tickets.pop(event_id, None)
        if ticket is not None:
            self.cooldowns.release(ticket)

    def _sent(self, message: Outgoing) -> None:
        self.status.count_out()
        if message.ticket is not None:
            self.cooldowns.sent(message.ticket)

    def _dropped(self, message: Outgoing, reason: str) -> None:
        self.status.count_dropped()
        if message.ticket is not None:
            self.cooldowns.release(message.ticket)
