"""The twitchio client: tokens from the database, one chat subscription per channel.

Chat arrives as EventSub `channel.chat.message` over twitchio's websocket (IRC is
gone from twitchio 3); the adapter gets each message through `TwitchListener`. The
channels are followed while running (`follow`): subscribed when their row is joined,
unsubscribed when it is paused or deleted. Each channel's title and game come from
Helix when it is joined, then from `channel.update`: the prompt's context, never a
reason not to chat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import twitchio
import twitchio.eventsub.websockets
from twitchio import eventsub
from twitchio.authentication import ValidateTokenPayload

from chatbridge.adapters.errors import AdapterFatal
from chatbridge.adapters.twitch.tokens import TokenPair, aload_pair, amark_needs_reconnect, astore_kept
from chatbridge.config import TwitchConfig
from serdabot.encryption import SecretUnreadable
from serdabot.outage import describe

log = logging.getLogger("chatbridge.twitch")

# Read chat over EventSub, send as the bot, and show the chat-bot badge (app-token sends).
REQUIRED_SCOPES = ("user:read:chat", "user:write:chat", "user:bot")
HOW_TO = "connect the bot account again at /twitch/connect/; see 'Connecting to Twitch' in the README"
# Helix takes at most 100 broadcaster ids per GET /channels, and 100 logins per GET /users.
CHANNELS_PER_REQUEST = 100
USERS_PER_REQUEST = 100
# Start-up waits no longer than this for the titles: chat matters more than its context.
STREAM_INFO_TIMEOUT = 10.0


class TwitchListener(Protocol):
    async def on_message(self, message: twitchio.ChatMessage) -> None: ...

    async def on_welcome(self) -> None: ...

    async def on_closed(self) -> None: ...

    def on_stream_info(self, channel_id: str, title: str, game: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ChannelChanges:
    joined: list[twitchio.User]
    left: list[str]  # logins
    pending: bool  # some wanted channel could not be subscribed yet: call again later


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
        self._unknown: set[str] = set()  # wanted logins Twitch does not know: said once
        self._failing: dict[str, str] = {}  # login -> why its chat subscription failed, said once
        # When the setup page stored the token this client loaded: a newer one is not overwritten.
        self.connected_at: datetime | None = None
        # Every token this client touched, so error text can be scrubbed of them (even after close).
        self.handled_secrets: set[str] = set()

    # Token hooks: the database replaces twitchio's .tio.tokens.json file.

    async def load_tokens(self, path: str | None = None, /) -> None:
        try:
            loaded = await aload_pair(self.config.bot_id)
        except SecretUnreadable as exc:
            raise AdapterFatal(str(exc)) from None
        stored = [loaded.pair] if loaded is not None else []
        self.connected_at = loaded.connected if loaded is not None else None
        candidates = [*stored]
        seed = TokenPair(self.config.bot_id, self.config.bot_token, self.config.refresh_token)
        if seed.token and all(p.token != seed.token for p in stored):
            # First start, or the streamer pasted a fresh token into the environment.
            candidates.append(seed)
        if not candidates:
            raise AdapterFatal(
                f"no user token for the bot account (user id {self.config.bot_id}): connect it at "
                "/twitch/connect/, or set TWITCH_BOT_TOKEN and TWITCH_REFRESH_TOKEN (see 'Connecting "
                "to Twitch' in the README)"
            )
        problems: list[str] = []
        for pair in candidates:
            try:
                validated = await self.add_token(pair.token, pair.refresh)
            except twitchio.InvalidTokenException:
                problems.append("refused by Twitch (expired or revoked, and the refresh token did not work)")
                if pair in stored:
                    # The setup page says "reconnect" until a new token is stored.
                    await amark_needs_reconnect(pair.user_id)
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
            return f"it belongs to user {validated.user_id}, not to the bot account {self.config.bot_id}"
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
                await astore_kept(validated.user_id, kept["token"], kept["refresh"], since=self.connected_at)
        return validated

    async def save_tokens(self, path: str | None = None, /) -> None:
        for user_id, data in self.tokens.items():
            await astore_kept(user_id, data["token"], data["refresh"], since=self.connected_at)

    async def event_token_refreshed(self, payload: twitchio.TokenRefreshedPayload) -> None:
        self.handled_secrets.update((payload.token, payload.refresh_token))
        if await astore_kept(payload.user_id, payload.token, payload.refresh_token, since=self.connected_at):
            log.info("Twitch token for the bot refreshed and stored")

    # The channels: the joined rows, followed while running.

    async def follow(self, wanted: Sequence[str]) -> ChannelChanges:
        """Read the chat of the `wanted` channels (logins) and of no other.

        A channel whose chat cannot be subscribed yet is left out (said once) and tried
        again at the next call; `ChannelChanges.pending` says some are. An unknown login is
        said once and not looked up again while it stays wanted.
        """
        keep = set(wanted)
        left = [login for login in self.channels if login not in keep]
        for login in left:
            await self._leave(login)
        self._unknown &= keep  # a channel removed, then added again, is looked up again
        for login in [f for f in self._failing if f not in keep]:
            del self._failing[login]
        new = [c for c in wanted if c not in self.channels and c not in self._unknown]
        joined = await self._join(new) if new else []
        pending = any(c not in self.channels and c not in self._unknown for c in wanted)
        return ChannelChanges(joined=joined, left=left, pending=pending)

    async def _join(self, logins: list[str]) -> list[twitchio.User]:
        found: dict[str, twitchio.User] = {}
        for start in range(0, len(logins), USERS_PER_REQUEST):
            users = await self.fetch_users(logins=logins[start : start + USERS_PER_REQUEST])
            found.update({u.name.lower(): u for u in users if u.name})
        unknown = [c for c in logins if c not in found]
        if unknown:
            self._unknown.update(unknown)
            log.warning("Twitch channel(s) not found, check their names: %s", ", ".join(unknown))
        joined: list[twitchio.User] = []
        for login in logins:
            user = found.get(login)
            if user is not None and await self._read_chat(login, user):
                joined.append(user)
        if joined:
            # Subscribed first: a title changed while Helix answers is not missed.
            await self._follow_stream_info(joined)
            await self._read_stream_info([u.id for u in joined])
        return joined

    async def _read_chat(self, login: str, user: twitchio.User) -> bool:
        subscription = eventsub.ChatMessageSubscription(
            broadcaster_user_id=user.id, user_id=self.config.bot_id
        )
        try:
            await self.subscribe_websocket(subscription, token_for=self.config.bot_id)
        except twitchio.InvalidTokenException:
            raise  # the adapter's to report: every channel has the same problem
        except Exception as exc:
            why = reason(exc)
            if self._failing.get(login) != why:
                log.warning("Twitch: cannot read chat in #%s yet (%s); trying again", login, why)
            self._failing[login] = why
            return False
        self._failing.pop(login, None)
        self.channels[login] = user
        self.logins[user.id] = login
        log.info("Twitch: reading chat in #%s", login)
        return True

    async def _leave(self, login: str) -> None:
        user = self.channels.pop(login)
        self.logins.pop(user.id, None)
        self._updated.discard(user.id)
        # By condition, not by the ids Twitch first gave: a reconnected websocket subscribed again.
        ids = [
            sid
            for sid, data in self.websocket_subscriptions().items()
            if data.condition.get("broadcaster_user_id") == user.id
        ]
        for subscription_id in ids:
            try:
                # force: forgotten here even if Twitch's answer is an error (it drops a
                # subscription whose websocket closes anyway).
                await self.delete_websocket_subscription(subscription_id, force=True)
            except ValueError:
                pass  # gone meanwhile, with its websocket
            except Exception as exc:
                log.warning("Twitch: could not unsubscribe from #%s (%s)", login, reason(exc))
        log.info("Twitch: no longer reading chat in #%s", login)

    async def _follow_stream_info(self, users: list[twitchio.User]) -> None:
        refused: list[str] = []
        for user in users:
            subscription = eventsub.ChannelUpdateSubscription(broadcaster_user_id=user.id)
            try:
                await self.subscribe_websocket(subscription, token_for=self.config.bot_id)
            except Exception as exc:
                # Refused (authorization, EventSub's cost limit) or Twitch hiccuped: the title
                # read at start stays; chat goes on.
                refused.append(f"#{self.logins.get(user.id, user.id)} ({reason(exc)})")
        if refused:
            log.warning(
                "Twitch: no title/game updates (channel.update refused) for %s; the prompt keeps the "
                "title read at start",
                ", ".join(refused),
            )

    async def _read_stream_info(self, ids: list[str]) -> None:
        self._updated.difference_update(ids)
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
                reason(exc),
            )

    async def event_channel_update(self, payload: twitchio.ChannelUpdate) -> None:
        self._updated.add(payload.broadcaster.id)
        self.listener.on_stream_info(payload.broadcaster.id, payload.title, payload.category_name)

    async def event_message(self, payload: twitchio.ChatMessage) -> None:
        await self.listener.on_message(payload)

    async def event_websocket_welcome(self, payload: object) -> None:
        await self.listener.on_welcome()

    async def event_websocket_closed(self, payload: twitchio.eventsub.websockets.WebsocketClosed) -> None:
        # twitchio closes a websocket whose last subscription was deleted (its channels
        # left): that is no lost connection.
        if payload.socket.subscription_count:
            await self.listener.on_closed()

    async def event_error(self, payload: twitchio.EventErrorPayload) -> None:
        # twitchio's default logs the listener's payload, which may hold chat text.
        log.error("Twitch event handler failed: %s", type(payload.error).__name__, exc_info=payload.error)


def reason(exc: BaseException) -> str:
    # An HTTPException's text holds the request URL: its status and Twitch's message say enough.
    if isinstance(exc, twitchio.HTTPException):
        message = exc.extra.get("message", "") if isinstance(exc.extra, dict) else ""
        return f"HTTP {exc.status}: {message}" if message else f"HTTP {exc.status}"
    return describe(exc)
