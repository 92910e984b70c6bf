"""The Twitch adapter: EventSub chat in, Helix replies out, through the shared relay.

Its settings are read at each start (`stored_config.twitch_config`: the environment,
then what the setup page stored), and its channels are the joined rows, followed while
it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import twitchio
import twitchio.eventsub.websockets
import twitchio.http
from asgiref.sync import sync_to_async
from channels.layers import BaseChannelLayer
from django.conf import settings
from django.db import DatabaseError

from chatbridge import stored_config
from chatbridge.adapters.errors import AdapterFatal
from chatbridge.adapters.recent import RecentIds
from chatbridge.adapters.relay import Relay
from chatbridge.adapters.status import AdapterStatus, State
from chatbridge.adapters.tasks import first_done, run_until_failure
from chatbridge.adapters.twitch.client import HOW_TO, TwitchClient, reason
from chatbridge.adapters.twitch.messages import chat_event, source_channel
from chatbridge.adapters.twitch.sender import HelixSender, ReplyParents
from chatbridge.adapters.twitch.streams import StreamInfos
from chatbridge.adapters.twitch.tokens import amark_needs_reconnect
from chatbridge.channel_settings import ChannelSettingsCache, settings_cache
from chatbridge.clock import Clock, SystemClock
from chatbridge.config import RateLimit, TwitchConfig
from chatbridge.cooldowns import Cooldowns
from serdabot.outage import describe

log = logging.getLogger("chatbridge.twitch")

# The longest a channel whose subscription failed waits before it is tried again.
RETRY_CAP = 300.0


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
        fix = (
            "the application's client id and secret (TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET, or "
            "/twitch/connect/)"
            if path.startswith("oauth2")
            else "the bot's scopes"
        )
        message = exc.extra.get("message", "") if isinstance(exc.extra, dict) else ""
        return AdapterFatal(f"Twitch refused {path} (HTTP {exc.status}: {message}); check {fix} ({HOW_TO})")
    return None


class TwitchAdapter:
    platform = "twitch"

    def __init__(
        self,
        config: TwitchConfig | None = None,
        *,
        layer: BaseChannelLayer | None = None,
        clock: Clock | None = None,
        channel_settings: ChannelSettingsCache = settings_cache,
        watch_every: float = 5.0,
        down_for_too_long: float = 180.0,
    ) -> None:
        # None: read at each start from stored_config. Given (tests): used as it is, its
        # channels given rows (joined) at each start.
        self.fixed_config = config
        self.config = config or TwitchConfig()
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
        self._rows_changed = asyncio.Event()

    def secrets(self) -> tuple[str, ...]:
        handled = self.client.handled_secrets if self.client is not None else set()
        return (*self.config.secrets(), *handled)

    def rate(self, channel: str) -> RateLimit:
        broadcaster = self.client.channels.get(channel) if self.client else None
        if channel in self.moderated or (broadcaster is not None and broadcaster.id == self.config.bot_id):
            return self.config.rate_limit_moderator
        return self.config.rate_limit

    async def _load_config(self) -> TwitchConfig:
        if self.fixed_config is not None:
            await self.channel_settings.ensure_rows(self.platform, self.fixed_config.channels)
            return self.fixed_config
        config = await sync_to_async(stored_config.twitch_config)()
        if not config.configured:
            problem = await sync_to_async(stored_config.twitch_problem)(config)
            raise AdapterFatal(problem or "not configured: connect Twitch at /twitch/connect/")
        await self.channel_settings.refresh()  # the rows as they are now
        return config

    async def run(self) -> None:
        self.config = await self._load_config()
        point_twitchio_at(self.config)
        # Set by the settings snapshot's reloads (any thread): the rows may have changed.
        loop = asyncio.get_running_loop()
        self._rows_changed = rows_changed = asyncio.Event()
        stop_listening = self.channel_settings.on_reload(lambda: _set_from_any_thread(loop, rows_changed))
        try:
            await self._run()
        finally:
            stop_listening()

    async def _run(self) -> None:
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
            if client.user is not None and client.user.name:
                relay.bot_names = (settings.BOT_NAME, client.user.name)
            pending = await self._follow_rows(client)
            await self._connected()
            log.info("Twitch: connected as bot %s in %d channel(s)", self.config.bot_id, len(client.channels))
            if not client.channels:
                log.info("Twitch: no channel joined yet; add one at /twitch/connect/ (read at once)")
            await run_until_failure(
                self._client_stopped(starter),
                relay.run(),
                self._watch(),
                self._keep_following(client, pending),
            )
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
                if isinstance(error, twitchio.InvalidTokenException):
                    await amark_needs_reconnect(self.config.bot_id)
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

    # The channels: the joined rows.

    async def _follow_rows(self, client: TwitchClient) -> bool:
        """Subscribe the joined rows' chat and unsubscribe the others. True when some channel
        is still to be tried again."""
        wanted = self.channel_settings.joined(self.platform)
        try:
            changes = await client.follow(list(wanted))
        except twitchio.InvalidTokenException:
            await amark_needs_reconnect(self.config.bot_id)
            raise AdapterFatal(f"Twitch refused the bot's token and its refresh token ({HOW_TO})") from None
        except Exception as exc:
            # Helix or the websocket failed: what is joined stays joined, the rest is tried again.
            log.warning("Twitch: could not update the channels read (%s); trying again", reason(exc))
            return True
        self.streams.keep_only(client.logins)  # a channel left is forgotten
        self.moderated.intersection_update(client.channels)
        new_ids = {u.name.lower(): u.id for u in changes.joined if u.name and not wanted.get(u.name.lower())}
        if new_ids:
            try:
                await sync_to_async(stored_config.fill_broadcaster_ids)(new_ids)
            except DatabaseError as exc:
                log.warning("Twitch: channel ids not stored (%s); stored at the next join", describe(exc))
        return changes.pending

    async def _keep_following(self, client: TwitchClient, pending: bool) -> None:
        """Follow the rows: at each reload of the settings snapshot (a row saved here or in
        another process, or the periodic refresh), and again later while a channel failed."""
        retry = self.watch_every
        while True:
            try:
                async with asyncio.timeout(retry if pending else None):
                    await self._rows_changed.wait()
            except TimeoutError:
                retry = min(retry * 2, RETRY_CAP)
            else:
                retry = self.watch_every
            self._rows_changed.clear()
            pending = await self._follow_rows(client)

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
                if message.broadcaster.id not in self.client.logins:
                    return  # a channel just left (paused or removed): its last lines go unanswered
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
            await self._check_token()
            # No channel joined: no websocket either, and nothing lost.
            if self._live_sockets() or (self.client is not None and not self.client.channels):
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

    async def _check_token(self) -> None:
        """twitchio revalidates the token hourly and, when Twitch refuses it and its refresh
        token (revoked: a password change, the app disconnected), drops it without a word.
        The setup page then says "reconnect", and the adapter stops until it is connected
        again (the setup watch starts it then)."""
        if self.client is None or self.client.tokens.get(self.config.bot_id) is not None:
            return
        await amark_needs_reconnect(self.config.bot_id)
        raise AdapterFatal(
            "Twitch no longer accepts the bot's token (revoked, or its refresh token refused): "
            "connect the bot account again at /twitch/connect/"
        )


def _set_from_any_thread(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    with contextlib.suppress(RuntimeError):  # that loop is closed: its adapter is gone
        loop.call_soon_threadsafe(event.set)
