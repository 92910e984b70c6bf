"""The Discord adapter: gateway messages and slash commands in, REST replies out, through
the shared relay."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl
from asgiref.sync import sync_to_async
from channels.layers import BaseChannelLayer
from django.conf import settings
from django.db import DatabaseError

from chatbridge.adapters.discord.channels import Row, SeenChannels, row_for, settings_channel
from chatbridge.adapters.discord.messages import chat_event, interaction_channel, slash_event
from chatbridge.adapters.discord.sender import Ack, DiscordSender, Interactions
from chatbridge.adapters.discord.slash import (
    ELSEWHERE,
    UNAVAILABLE,
    CommandSync,
    SlashTree,
    answer,
    line,
    slash_commands,
)
from chatbridge.adapters.errors import AdapterFatal
from chatbridge.adapters.recent import RecentIds
from chatbridge.adapters.relay import Relay
from chatbridge.adapters.status import AdapterStatus, State
from chatbridge.adapters.tasks import run_until_failure
from chatbridge.channel_settings import ChannelSettingsCache, settings_cache
from chatbridge.clock import Clock, SystemClock
from chatbridge.config import DiscordConfig, RateLimit
from chatbridge.cooldowns import Cooldowns
from chatbridge.events import ChatEvent
from chatbridge.models import DiscordBot

log = logging.getLogger("chatbridge.discord")

HOW_TO = "see 'Connecting to Discord' in the README"
# Gateway close codes a reconnect cannot fix: bad token, bad or disallowed intents.
FATAL_CLOSE_CODES = {
    4004: "Discord refused DISCORD_TOKEN at the gateway",
    4013: "Discord refused the bot's intents",
    4014: "the Message Content intent is not enabled for this bot in the developer portal",
}


def point_discord_at(config: DiscordConfig) -> None:
    # discord.py reads these class attributes for every request and connection.
    discord.http.Route.BASE = config.api_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(config.gateway_url)


def only_listed_setting() -> bool | None:
    """The setup page's "answer only in the channels I pick"; None without a stored setup
    (a configuration given whole, as DISCORD_CHANNELS once was, keeps its own)."""
    return DiscordBot.objects.filter(pk=1).values_list("only_listed", flat=True).first()


class DiscordClient(discord.Client):
    def __init__(self, adapter: DiscordAdapter) -> None:
        # The bot never joins voice: spare the streamer two warnings about voice libraries.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        intents = discord.Intents.default()
        # Privileged: also switched on in the developer portal. Without it Discord sends the
        # text of mentions only, and the slash commands need none.
        intents.message_content = adapter.config.message_content
        intents.members = False  # no member chunking: the bot reads messages, not rosters
        intents.presences = False
        super().__init__(intents=intents, max_messages=None)
        self.adapter = adapter
        self.tree = SlashTree(self)
        for command in slash_commands(adapter.on_slash, guild_only=not adapter.config.allow_dms):
            self.tree.add_command(command)

    async def on_message(self, message: discord.Message) -> None:
        await self.adapter.on_message(message)

    async def on_connect(self) -> None:
        await self.adapter.on_connected()

    async def on_resumed(self) -> None:
        await self.adapter.on_connected()

    async def on_disconnect(self) -> None:
        await self.adapter.on_disconnected()


class DiscordAdapter:
    platform = "discord"

    def __init__(
        self,
        config: DiscordConfig,
        *,
        layer: BaseChannelLayer | None = None,
        clock: Clock | None = None,
        channel_settings: ChannelSettingsCache = settings_cache,
    ) -> None:
        self.config = config
        self.layer = layer
        self.clock = clock or SystemClock()
        self.channel_settings = channel_settings
        self.status = AdapterStatus(self.platform)
        self.cooldowns = Cooldowns(clock=self.clock.now)
        # Kept across relays, as the cooldowns are: a redelivery comes after a reconnection.
        self.recent_ids = RecentIds(self.clock.now)
        # Which channels get answers follows the rows live (see _follow_rows): "only the
        # channels I pick" and the picked (joined) rows. Until the snapshot is first
        # reloaded, the configuration read at start.
        self.only_listed = config.only_listed or bool(config.channels)
        self.allowed = frozenset(config.channels)
        self.client: DiscordClient | None = None
        self.relay: Relay | None = None
        self.interactions: Interactions | None = None  # the slash commands awaiting their reply
        self.command_sync = CommandSync(config.guilds)
        self.connected = asyncio.Event()
        self._bot_id = 0
        self._stopping = False
        self.seen_channels = SeenChannels(self.clock.now)
        self._background: set[asyncio.Task[None]] = set()

    def secrets(self) -> tuple[str, ...]:
        return self.config.secrets()

    def rate(self, channel: str) -> RateLimit:
        return self.config.rate_limit

    async def run(self) -> None:
        point_discord_at(self.config)
        stop_following = self.channel_settings.on_reload(self._follow_rows)
        try:
            await self.channel_settings.ensure_rows(self.platform, self.config.channels)
            await self._run()
        finally:
            stop_following()

    async def _run(self) -> None:
        client = self.client = DiscordClient(self)
        # Per connection, as the client: an interaction is answered through its client's session.
        interactions = self.interactions = Interactions(self.clock.now)
        relay = self.relay = Relay(
            self.platform,
            send=DiscordSender(client, interactions),
            rate=self.rate,
            status=self.status,
            bot_names=(settings.BOT_NAME,),
            layer=self.layer,
            clock=self.clock,
            settings=self.channel_settings,
            cooldowns=self.cooldowns,
            recent_ids=self.recent_ids,
        )
        relay.unanswered = self._unanswered
        self._stopping = False
        await self.status.set_state(State.STARTING)
        try:
            try:
                await client.login(self.config.token)
            except discord.LoginFailure:
                raise AdapterFatal(f"Discord refused DISCORD_TOKEN (HTTP 401) ({HOW_TO})") from None
            if client.user is not None:
                self._bot_id = client.user.id
                relay.bot_names = (settings.BOT_NAME, client.user.name, client.user.display_name)
            await self.command_sync.sync(client.tree)
            await run_until_failure(self._connect(client), relay.run())
        finally:
            self._stopping = True  # closing our own connection is not losing it
            self.connected.clear()
            await relay.settle()
            await relay.close()
            await client.close()

    async def _connect(self, client: DiscordClient) -> None:
        try:
            # discord.py reconnects (and resumes) on its own; it raises only what it cannot fix.
            await client.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired:
            raise AdapterFatal(f"{FATAL_CLOSE_CODES[4014]} ({HOW_TO})") from None
        except discord.ConnectionClosed as exc:
            if exc.code in FATAL_CLOSE_CODES:
                raise AdapterFatal(
                    f"{FATAL_CLOSE_CODES[exc.code]} (close code {exc.code}) ({HOW_TO})"
                ) from None
            raise
        raise ConnectionError("Discord gateway connection closed")

    def accepts(self, message: discord.Message) -> bool:
        if message.author.bot or message.webhook_id is not None:
            return False  # other bots, webhooks, and the bot itself
        in_guild = message.guild is not None
        return self._answers_in(in_guild, settings_channel(message.channel), message.channel.id)

    def _answers_in(self, in_guild: bool, channel: str, channel_id: int | None) -> bool:
        if not in_guild:
            return self.config.allow_dms
        if not self.only_listed:
            return True
        allowed = self.allowed
        # A thread counts as its parent channel.
        return channel in allowed or str(channel_id) in allowed

    async def on_message(self, message: discord.Message) -> None:
        try:
            if self.relay is None or not self.accepts(message):
                return
            self._note_channel(message.guild, message.channel)
            await self.relay.incoming(chat_event(message, self._bot_id))
        except Exception:
            log.exception("Discord: a chat message could not be handled")

    async def on_slash(self, interaction: discord.Interaction[Any], command: str, text: str) -> None:
        """/ask or /chill: one chat event through the relay, acknowledged within Discord's 3 s."""
        relay, interactions = self.relay, self.interactions
        if relay is None or interactions is None:
            return  # between two connections: this client's tree is not in use any more
        slash = interactions.expect(interaction)
        if slash is None:
            return  # delivered twice: the first delivery is being answered
        try:
            channel = interaction_channel(interaction)
            if not self._answers_in(interaction.guild_id is not None, channel, interaction.channel_id):
                language = self.channel_settings.get(self.platform, channel).language
                await slash.refuse(line(ELSEWHERE, language))
                return
            self._note_channel(interaction.guild, interaction.channel)
            await answer(slash, relay, slash_event(interaction, command, text))
        except Exception:
            log.exception("Discord: a slash command could not be handled")
            if slash.ack in (Ack.WAITING, Ack.DEFERRED):
                # Never "the application did not respond", nor "thinking…" for 15 minutes.
                await slash.refuse(line(UNAVAILABLE))

    def _unanswered(self, event: ChatEvent) -> None:
        """The workers left a slash command unanswered: its "thinking…" gets a line, not 15
        minutes of waiting. (A chat message the workers leave needs nothing.)"""
        interactions = self.interactions
        slash = interactions.get(event.message_id) if interactions is not None else None
        if slash is None:
            return
        interactions.forget(event.message_id)  # type: ignore[union-attr]  # found in it just above
        language = self.channel_settings.get(self.platform, event.channel).language
        task = asyncio.create_task(slash.refuse(line(UNAVAILABLE, language)))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _follow_rows(self) -> None:
        """After every reload of the settings snapshot (a row saved here or in another
        process, or the periodic refresh; in the thread that reloaded): the picked channels,
        and whether only they are answered, without a restart."""
        self.allowed = frozenset(self.channel_settings.joined(self.platform))
        try:
            only_listed = only_listed_setting()
        except DatabaseError:
            return  # the switch as it was; the next reload reads it again
        if only_listed is not None:
            self.only_listed = only_listed

    def _note_channel(self, guild: discord.Guild | None, channel: object) -> None:
        """Give a channel its admin row the first time it speaks, in the background.

        Threads and DMs make no row of their own (see channels.py): a thread's speaking
        gives its parent channel the row.
        """
        row = row_for(guild, channel)
        if row is None or not self.seen_channels.first_sight(row.channel):
            return
        task = asyncio.create_task(self._remember(row))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _remember(self, row: Row) -> None:
        settings_cache = self.channel_settings
        if settings_cache.outage.ongoing:
            # The database is away: the row is made by the refresh that finds it back.
            settings_cache.remember_later(self.platform, row.channel, row.label)
            return
        try:
            await sync_to_async(settings_cache.remember)(self.platform, row.channel, row.label)
        except DatabaseError as exc:
            settings_cache.remember_later(self.platform, row.channel, row.label)
            settings_cache.outage.failed(exc)  # said once per outage, not once per channel
        else:
            settings_cache.outage.recovered()

    async def on_connected(self) -> None:
        if self.status.state != State.CONNECTED:
            log.info("Discord: connected")
        self.connected.set()
        await self.status.set_state(State.CONNECTED, "")

    async def on_disconnected(self) -> None:
        self.connected.clear()
        if self.status.state == State.CONNECTED and not self._stopping:
            log.warning("Discord: gateway connection lost, discord.py is reconnecting")
            await self.status.set_state(State.RECONNECTING, "gateway disconnected")
