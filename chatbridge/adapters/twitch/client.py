"""The twitchio client: tokens from the database, one chat subscription per channel.

Chat arrives as EventSub `channel.chat.message` over twitchio's websocket (IRC is
gone from twitchio 3); the adapter gets each message through `TwitchListener`. Each
channel's title and game come from Helix at start, then from `channel.update`: the
prompt's context, never a reason not to chat.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import twitchio
from twitchio import eventsub
from twitchio.authentication import ValidateTokenPayload

from chatbridge.adapters.errors import AdapterFatal
from chatbridge.adapters.twitch.tokens import TokenPair, aload_pairs, astore_pair
from chatbridge.config import TwitchConfig
from serdabot.outage import describe

log = logging.getLogger("chatbridge.twitch")

# Read chat over EventSub, send as the bot, and show the chat-bot badge (app-token sends).
REQUIRED_SCOPES = ("user:read:chat", "user:write:chat", "user:bot")
HOW_TO = "see 'Connecting to Twitch' in the README"
# Helix takes at most 100 broadcaster ids per GET /channels.
CHANNELS_PER_REQUEST = 100
# Start-up waits no longer than this for the titles: chat matters more than its context.
STREAM_INFO_TIMEOUT = 10.0


class TwitchListener(Protocol):
    async def on_message(self, message: twitchio.ChatMessage) -> None: ...

    async def on_welcome(self) -> None: ...

    async def on_closed(self) -> None: ...

    def on_stream_info(self, channel_id: str, title: str, game: str) -> None: ...


class TwitchClient(twitchio.Client):
    def __init__(self, config: TwitchConfig, listener: TwitchListener) -> None:
        super().__init__(
            client_id=config.client_id,
            client_secret=config.client_secret,
            bot_id=config.bot_id,
        )
        self.config = config
        self.listener = listener
        self.channels: dict[str, twitchio.User] = {}  # login -> broadcaster
        self.logins: dict[str, str] = {}  # broadcaster id -> login, of the same channels
        self._updated: set[str] = set()  # channels whose channel.update came while Helix answered
        # Every token this client touched, so error text can be scrubbed of them (even after close).
        self.handled_secrets: set[str] = set()

    # Token hooks: the database replaces twitchio's .tio.tokens.json file.

    async def load_tokens(self, path: str | None = None, /) -> None:
        stored = [p for p in await aload_pairs() if p.user_id == self.config.bot_id]
        candidates = [*stored]
        seed = TokenPair(self.config.bot_id, self.config.bot_token, self.config.refresh_token)
        if seed.token and all(p.token != seed.token for p in stored):
            # First start, or the streamer pasted a fresh token into the environment.
            candidates.append(seed)
        if not candidates:
            raise AdapterFatal(
                f"no user token for the bot account (TWITCH_BOT_ID={self.config.bot_id}): "
                f"set TWITCH_BOT_TOKEN and TWITCH_REFRESH_TOKEN ({HOW_TO})"
            )
        problems: list[str] = []
        for pair in candidates:
            try:
                validated = await self.add_token(pair.token, pair.refresh)
            except twitchio.InvalidTokenException:
                problems.append("refused by Twitch (expired or revoked, and the refresh token did not work)")
                continue
            problem = self._token_problem(validated)
            if problem is None:
                return
            if validated.user_id:
                await self.remove_token(validated.user_id)
            problems.append(problem)
        raise AdapterFatal(f"the bot's Twitch token is unusable: {'; '.join(problems)} ({HOW_TO})")

    def _token_problem(self, validated: ValidateTokenPayload) -> str | None:
        if not validated.user_id:
            return "it is an app token, not a user token"
        if validated.user_id != self.config.bot_id:
            return f"it belongs to user {validated.user_id}, not TWITCH_BOT_ID={self.config.bot_id}"
        missing = [s for s in REQUIRED_SCOPES if s not in validated.scopes]
        if missing:
            return f"it lacks the scope(s) {', '.join(missing)}"
        return None

    async def add_token(self, token: str, refresh: str) -> ValidateTokenPayload:
        self.handled_secrets.update((token, refresh))
        validated = await super().add_token(token, refresh)
        if validated.user_id:
            # twitchio may have refreshed it on the way in: store what it keeps, not what came in.
            kept = self.tokens.get(validated.user_id)
            if kept is not None:
                self.handled_secrets.update((kept["token"], kept["refresh"]))
                await astore_pair(validated.user_id, kept["token"], kept["refresh"])
        return validated

    async def save_tokens(self, path: str | None = None, /) -> None:
        for user_id, data in self.tokens.items():
            await astore_pair(user_id, data["token"], data["refresh"])

    async def event_token_refreshed(self, payload: twitchio.TokenRefreshedPayload) -> None:
        self.handled_secrets.update((payload.token, payload.refresh_token))
        await astore_pair(payload.user_id, payload.token, payload.refresh_token)
        log.info("Twitch token for the bot refreshed and stored")

    # Start-up: find the channels, subscribe to their chat.

    async def setup_hook(self) -> None:
        wanted = list(self.config.channels)
        users = await self.fetch_users(logins=wanted)
        self.channels = {u.name.lower(): u for u in users if u.name}
        self.logins = {u.id: login for login, u in self.channels.items()}
        unknown = [c for c in wanted if c not in self.channels]
        if unknown:
            log.warning("Twitch channel(s) not found, check TWITCH_CHANNELS: %s", ", ".join(unknown))
        if not self.channels:
            raise AdapterFatal(f"none of TWITCH_CHANNELS exists on Twitch ({', '.join(wanted)})")
        for login, user in self.channels.items():
            subscription = eventsub.ChatMessageSubscription(
                broadcaster_user_id=user.id, user_id=self.config.bot_id
            )
            await self.subscribe_websocket(subscription, token_for=self.config.bot_id)
            log.info("Twitch: reading chat in #%s", login)
        # Subscribed first: a title changed while Helix answers is not missed.
        await self._follow_stream_info()
        await self._read_stream_info()

    async def _follow_stream_info(self) -> None:
        refused: list[str] = []
        for login, user in self.channels.items():
            subscription = eventsub.ChannelUpdateSubscription(broadcaster_user_id=user.id)
            try:
                await self.subscribe_websocket(subscription, token_for=self.config.bot_id)
            except Exception as exc:
                # Refused (authorization, EventSub's cost limit) or Twitch hiccuped: the title
                # read at start stays; chat goes on.
                refused.append(f"#{login} ({_reason(exc)})")
        if refused:
            log.warning(
                "Twitch: no title/game updates (channel.update refused) for %s; the prompt keeps the "
                "title read at start",
                ", ".join(refused),
            )

    async def _read_stream_info(self) -> None:
        ids = list(self.logins)
        self._updated.clear()
        try:
            async with asyncio.timeout(STREAM_INFO_TIMEOUT):
                for start in range(0, len(ids), CHANNELS_PER_REQUEST):
                    batch: list[str | int] = [*ids[start : start + CHANNELS_PER_REQUEST]]
                    for info in await self.fetch_channels(batch):
                        if info.user.id not in self._updated:  # else Helix's answer is older
                            self.listener.on_stream_info(info.user.id, info.title, info.game_name)
        except Exception as exc:
            log.warning(
                "Twitch: could not read the channels' title and game from Helix (%s); answering "
                "without them until channel.update says",
                _reason(exc),
            )

    async def event_channel_update(self, payload: twitchio.ChannelUpdate) -> None:
        self._updated.add(payload.broadcaster.id)
        self.listener.on_stream_info(payload.broadcaster.id, payload.title, payload.category_name)

    async def event_message(self, payload: twitchio.ChatMessage) -> None:
        await self.listener.on_message(payload)

    async def event_websocket_welcome(self, payload: object) -> None:
        await self.listener.on_welcome()

    async def event_websocket_closed(self, payload: object) -> None:
        await self.listener.on_closed()

    async def event_error(self, payload: twitchio.EventErrorPayload) -> None:
        # twitchio's default logs the listener's payload, which may hold chat text.
        log.error("Twitch event handler failed: %s", type(payload.error).__name__, exc_info=payload.error)


def _reason(exc: BaseException) -> str:
    # An HTTPException's text holds the request URL: its status and Twitch's message say enough.
    if isinstance(exc, twitchio.HTTPException):
        message = exc.extra.get("message", "") if isinstance(exc.extra, dict) else ""
        return f"HTTP {exc.status}: {message}" if message else f"HTTP {exc.status}"
    return describe(exc)
