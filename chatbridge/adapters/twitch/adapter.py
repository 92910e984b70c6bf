"""The Twitch adapter: EventSub chat in, Helix replies out, through the shared relay."""

from __future__ import annotations

import asyncio
import logging
import time

import twitchio
import twitchio.eventsub.websockets
import twitchio.http
from channels.layers import BaseChannelLayer
from django.conf import settings

from chatbridge.adapters.errors import AdapterFatal
from chatbridge.adapters.recent import RecentIds
from chatbridge.adapters.relay import Relay
from chatbridge.adapters.status import AdapterStatus, State
from chatbridge.adapters.tasks import first_done, run_until_failure
from chatbridge.adapters.twitch.client import HOW_TO, TwitchClient
from chatbridge.adapters.twitch.messages import chat_event, source_channel
from chatbridge.adapters.twitch.sender import HelixSender, ReplyParents
from chatbridge.adapters.twitch.streams import StreamInfos
from chatbridge.channel_settings import ChannelSettingsCache, settings_cache
from chatbridge.clock import Clock, SystemClock
from chatbridge.config import RateLimit, TwitchConfig
from chatbridge.cooldowns import Cooldowns

log = logging.getLogger("chatbridge.twitch")


def point_twitchio_at(config: TwitchConfig) -> None:
    # twitchio reads these class/module attributes at request and connect time and
    # takes no constructor argument for them: assignment is the only way in.
    twitchio.http.Route.BASE = config.api_url
    twitchio.http.Route.ID_BASE = config.auth_url
    twitchio.eventsub.websockets.WSS = config.eventsub_url


def fatal_reason(exc: BaseException) -> AdapterFatal | None:
    """The start-up errors a retry cannot fix."""
    if isinstance(exc, AdapterFatal):
        return exc
    if isinstance(exc, twitchio.InvalidTokenException):
        return AdapterFatal(f"Twitch refused the bot's token and its refresh token ({HOW_TO})")
    if isinstance(exc, twitchio.HTTPException) and exc.status in (400, 401, 403):
        path = exc.route.path if exc.route is not None else "the API"
        fix = "TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET" if path.startswith("oauth2") else "the bot's scopes"
        message = exc.extra.get("message", "") if isinstance(exc.extra, dict) else ""
        return AdapterFatal(f"Twitch refused {path} (HTTP {exc.status}: {message}); check {fix} ({HOW_TO})")
    return None


class TwitchAdapter:
    platform = "twitch"

    def __init__(
        self,
        config: TwitchConfig,
        *,
        layer: BaseChannelLayer | None = None,
        clock: Clock | None = None,
        channel_settings: ChannelSettingsCache = settings_cache,
        watch_every: float = 5.0,
        down_for_too_long: float = 180.0,
    ) -> None:
        self.config = config
        self.layer = layer
        self.clock = clock or SystemClock()
        self.channel_settings = channel_settings
        self.watch_every = watch_every
        # twitchio retries a lost websocket on its own (backoff up to 90 s); past this
        # the whole client is rebuilt by the supervisor.
        self.down_for_too_long = down_for_too_long
        self.status = AdapterStatus(self.platform)
        # Kept across restarts: a reconnect must not reset everyone's cooldown.
        self.cooldowns = Cooldowns(clock=self.clock.now)
        # Kept across relays, as the cooldowns are: a redelivery comes after a reconnection.
        self.recent_ids = RecentIds(self.clock.now)
        self.moderated: set[str] = set()  # channels where the bot's own messages carry a mod badge
        # Each joined channel's title and game, for the prompt (Helix at start, then channel.update).
        self.streams = StreamInfos()
        self.reply_parents = ReplyParents()
        self.connected = asyncio.Event()
        self._stopping = False
        self.client: TwitchClient | None = None
        self.relay: Relay | None = None

    def secrets(self) -> tuple[str, ...]:
        handled = self.client.handled_secrets if self.client is not None else set()
        return (*self.config.secrets(), *handled)

    def rate(self, channel: str) -> RateLimit:
        broadcaster = self.client.channels.get(channel) if self.client else None
        if channel in self.moderated or (broadcaster is not None and broadcaster.id == self.config.bot_id):
            return self.config.rate_limit_moderator
        return self.config.rate_limit

    async def run(self) -> None:
        point_twitchio_at(self.config)
        await self.channel_settings.ensure_rows(self.platform, self.config.channels)
        client = self.client = TwitchClient(self.config, self)
        relay = self.relay = Relay(
            self.platform,
            send=HelixSender(client, self.config.bot_id, self.reply_parents),
            rate=self.rate,
            status=self.status,
            bot_names=(settings.BOT_NAME,),
            layer=self.layer,
            clock=self.clock,
            settings=self.channel_settings,
            cooldowns=self.cooldowns,
            recent_ids=self.recent_ids,
        )
        self._stopping = False
        await self.status.set_state(State.STARTING)
        # Our token hooks replace twitchio's file; its OAuth web server (port 4343) is not needed.
        starter = asyncio.create_task(client.start(with_adapter=False), name="twitchio")
        try:
            await self._until_ready(client, starter)
            self.streams.keep_only(client.logins)  # a channel taken off TWITCH_CHANNELS is forgotten
            if client.user is not None and client.user.name:
                relay.bot_names = (settings.BOT_NAME, client.user.name)
            await self._connected()
            log.info("Twitch: connected as bot %s in %d channel(s)", self.config.bot_id, len(client.channels))
            await run_until_failure(self._client_stopped(starter), relay.run(), self._watch())
        finally:
            self._stopping = True  # closing our own websocket is not a lost connection
            self.connected.clear()
            await relay.settle()
            await relay.close()
            await client.close()
            starter.cancel()

    async def _until_ready(self, client: TwitchClient, starter: asyncio.Task[None]) -> None:
        ready = asyncio.ensure_future(client.wait_until_ready())
        try:
            await first_done(starter, ready)
        finally:
            ready.cancel()
        if starter.done():
            error = starter.exception() if not starter.cancelled() else None
            if error is None:
                raise ConnectionError("twitchio stopped during start-up")
            fatal = fatal_reason(error)
            if fatal is not None:
                raise fatal
            if isinstance(error, twitchio.HTTPException):
                # Its text holds the request URL, query string (client secret, tokens) included.
                path = error.route.path if error.route is not None else "the API"
                raise ConnectionError(f"Twitch answered HTTP {error.status} on {path}") from None
            raise error

    @staticmethod
    async def _client_stopped(starter: asyncio.Task[None]) -> None:
        # Shielded: on shutdown, run() closes the client itself, in order.
        await asyncio.shield(starter)
        raise ConnectionError("twitchio client stopped")

    async def _connected(self) -> None:
        self.connected.set()
        await self.status.set_state(State.CONNECTED, "")

    # What twitchio tells us (TwitchListener).

    async def on_message(self, message: twitchio.ChatMessage) -> None:
        try:
            chatter = message.chatter
            if chatter.id == self.config.bot_id:
                if source_channel(message) is None:  # a shared copy carries another channel's badges
                    self._learn_moderation(message)
                return
            if (chatter.name or "").lower() in self.config.ignored_bots:
                return
            if self.relay is not None and self.client is not None:
                event = chat_event(
                    message, self.config.bot_id, joined=self.client.logins, streams=self.streams
                )
                if event.channel_id == message.broadcaster.id:
                    # A shared-chat copy answered where it arrived: its reply names this copy.
                    self.reply_parents.note(event.channel_id, event.message_id, message.id)
                await self.relay.incoming(event)
        except Exception:
            log.exception("Twitch: a chat message could not be handled")

    def _learn_moderation(self, message: twitchio.ChatMessage) -> None:
        # The bot's own messages come back with its badges: the cheapest way to know
        # where it is a moderator (and so allowed 100 messages per 30 s, not 20).
        channel = (message.broadcaster.name or "").lower()
        if message.chatter.moderator:
            self.moderated.add(channel)
        else:
            self.moderated.discard(channel)

    def on_stream_info(self, channel_id: str, title: str, game: str) -> None:
        if self.client is not None and channel_id in self.client.logins:  # bounded by the channels
            self.streams.update(channel_id, title, game)

    async def on_welcome(self) -> None:
        # The first welcome comes during start-up, before the subscriptions: not "connected" yet.
        if self.status.state == State.RECONNECTING:
            log.info("Twitch: chat connection back")
            await self._connected()

    async def on_closed(self) -> None:
        if self.status.state == State.CONNECTED and not self._stopping:
            log.warning("Twitch: chat connection lost, twitchio is reconnecting")
            self.connected.clear()
            await self.status.set_state(State.RECONNECTING, "EventSub websocket closed")

    def _live_sockets(self) -> int:
        # twitchio keeps no public view of its EventSub sockets.
        groups = getattr(self.client, "_websockets", {})
        return sum(1 for group in groups.values() for ws in group.values() if ws.connected)

    async def _watch(self) -> None:
        down_since: float | None = None
        while True:
            await asyncio.sleep(self.watch_every)
            if self._live_sockets():
                down_since = None
                if self.status.state != State.CONNECTED:
                    await self._connected()
                continue
            now = time.monotonic()
            if down_since is None:
                down_since = now
                await self.on_closed()
            elif now - down_since > self.down_for_too_long:
                raise ConnectionError(f"no EventSub connection for {now - down_since:.0f} s")
