"""Discord's REST API as the setup page uses it (sync, httpx): who a bot token belongs to,
whether its application has the Message Content intent, and which servers and channels
the bot is in.

Every URL starts from `DiscordConfig.api_url`, so `DISCORD_API_URL` points all of it at a
test double. Errors are `DiscordError`s whose message can be shown as is: never the token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from django.utils.translation import gettext as _

log = logging.getLogger("chatbridge.setup")

TIMEOUT = 10.0
# Application flags (GET /applications/@me): the privileged Message Content intent, as
# switched on in the Developer Portal (LIMITED: a bot in fewer than 100 servers).
GATEWAY_MESSAGE_CONTENT = 1 << 18
GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
# Channel types the bot can answer in: their messages (or their threads') reach it.
CHANNEL_KINDS = {0: "text", 5: "announcement", 15: "forum", 2: "voice", 13: "stage"}
# At most this many servers are listed: each costs one request.
MAX_GUILDS = 50


class DiscordError(Exception):
    """Discord refused, or could not be reached. The message is safe to show."""


class TokenRefused(DiscordError):
    pass


class DiscordUnreachable(DiscordError):
    pass


class DiscordRefused(DiscordError):
    """An HTTP error other than a refused token or a rate limit: 403, 404, 5xx."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class BotIdentity:
    application_id: str
    bot_name: str
    message_content: bool


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    kind: str  # a key of CHANNEL_KINDS' values


@dataclass(frozen=True, slots=True)
class Guild:
    id: str
    name: str
    channels: tuple[Channel, ...]
    # Off when Discord refused the server's channels (the bot was removed from it meanwhile,
    # or lost View Channels): the server is still shown, with a note.
    readable: bool = True


@dataclass(frozen=True, slots=True)
class Servers:
    guilds: tuple[Guild, ...]
    capped: bool  # the bot is in more than MAX_GUILDS servers: the others are not listed


def _get(api_url: str, token: str, path: str) -> Any:
    try:
        response = httpx.get(
            f"{api_url}{path}",
            headers={"Authorization": f"Bot {token}", "User-Agent": "SerdaBot setup"},
            timeout=TIMEOUT,
        )
    except httpx.HTTPError:
        # The exception's text can name the URL, never the header; still, say it plainly.
        raise DiscordUnreachable(
            _("Discord could not be reached. Check the connection and try again.")
        ) from None
    if response.status_code == 401:
        raise TokenRefused(
            _("Discord refused this token. Copy it again from the Developer Portal (Bot → Reset Token).")
        )
    if response.status_code == 429:
        raise DiscordError(_("Discord asks to slow down. Try again in a minute."))
    if response.status_code >= 400:
        raise DiscordRefused(
            _("Discord answered with an error (HTTP %(status)s). Try again later.")
            % {"status": response.status_code},
            response.status_code,
        )
    try:
        return response.json()
    except ValueError:
        raise DiscordError(_("Discord's answer could not be read. Try again later.")) from None


def identify(api_url: str, token: str) -> BotIdentity:
    """Check the token: the bot's name and id, and its application's intent."""
    user = _get(api_url, token, "/users/@me")
    application = _get(api_url, token, "/applications/@me")
    flags = int(application.get("flags") or 0)
    return BotIdentity(
        application_id=str(application.get("id") or user.get("id") or ""),
        bot_name=str(user.get("global_name") or user.get("username") or ""),
        message_content=bool(flags & (GATEWAY_MESSAGE_CONTENT | GATEWAY_MESSAGE_CONTENT_LIMITED)),
    )


def guilds(api_url: str, token: str) -> Servers:
    """The servers the bot is in, each with the channels it could answer in."""
    try:
        return _guilds(api_url, token)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise DiscordError(_("Discord's answer could not be read. Try again later.")) from None


def _guilds(api_url: str, token: str) -> Servers:
    listed = _get(api_url, token, "/users/@me/guilds")
    found = []
    for guild in listed[:MAX_GUILDS]:
        name = str(guild.get("name") or guild["id"])
        try:
            answer = _get(api_url, token, f"/guilds/{guild['id']}/channels")
        except DiscordRefused as exc:
            # One server refusing must not hide the others. A refused token, a rate limit or
            # Discord out of reach would refuse them all: those still stop the whole list.
            log.warning("Discord: channels of server %s not readable (HTTP %s)", guild["id"], exc.status)
            found.append(Guild(id=str(guild["id"]), name=name, channels=(), readable=False))
            continue
        channels = [c for c in answer if c.get("type") in CHANNEL_KINDS]
        channels.sort(key=lambda c: (c.get("position", 0), int(c["id"])))
        found.append(
            Guild(
                id=str(guild["id"]),
                name=name,
                channels=tuple(
                    Channel(str(c["id"]), str(c.get("name") or c["id"]), CHANNEL_KINDS[c["type"]])
                    for c in channels
                ),
            )
        )
    return Servers(tuple(found), capped=len(listed) > MAX_GUILDS)
