"""Chat platform settings, read from the environment.

Secrets are kept out of `repr()` so a settings object can be logged or shown in a
traceback without leaking a token. The mistakes people commonly make when pasting a value
(a login for an id, a URL for a channel, a token with its prefix) stop start-up with one
line naming the setting and the fix; a token's value is never in that line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from serdabot.env import SettingError, env_bool, env_float, env_int, env_list, env_str

TWITCH_API_URL = "https://api.twitch.tv/helix/"
TWITCH_AUTH_URL = "https://id.twitch.tv/"
TWITCH_EVENTSUB_URL = "wss://eventsub.wss.twitch.tv/ws"
DISCORD_API_URL = "https://discord.com/api/v10"
DISCORD_GATEWAY_URL = "wss://gateway.discord.gg/"

# Other chat bots commonly found in Twitch channels: answering them starts bot ping-pong.
DEFAULT_IGNORED_BOTS = ["nightbot", "streamelements", "moobot", "fossabot", "streamlabs"]

# Twitch logins: letters, digits and underscores, at most 25 characters.
TWITCH_LOGIN = re.compile(r"[a-z0-9_]{1,25}")
# Prefixes pasted along with a token: IRC-era token generators' `oauth:` and the Authorization
# header's scheme (`Bearer`, `OAuth`; `Bot` on Discord). The APIs want the token alone.
TWITCH_TOKEN_PREFIXES = ("oauth:", "bearer ", "oauth ")
DISCORD_TOKEN_PREFIXES = ("bot ", "bearer ")


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `messages` sends per channel in any `window` seconds."""

    messages: int
    window: float


@dataclass(frozen=True, slots=True)
class TwitchConfig:
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    bot_id: str = ""
    channels: tuple[str, ...] = ()
    bot_token: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    api_url: str = TWITCH_API_URL
    auth_url: str = TWITCH_AUTH_URL
    eventsub_url: str = TWITCH_EVENTSUB_URL
    ignored_bots: tuple[str, ...] = tuple(DEFAULT_IGNORED_BOTS)
    # Twitch's chat limits: 20 messages per 30 s, 100 where the bot is moderator or broadcaster.
    rate_limit: RateLimit = RateLimit(20, 30.0)
    rate_limit_moderator: RateLimit = RateLimit(100, 30.0)

    @property
    def configured(self) -> bool:
        """Enough to start the adapter: the application and the bot account. Channels may
        come later (rows, joined live), and a missing token is the adapter's to report."""
        return bool(self.client_id and self.client_secret and self.bot_id)

    def missing(self) -> list[str]:
        names = {
            "TWITCH_CLIENT_ID": self.client_id,
            "TWITCH_CLIENT_SECRET": self.client_secret,
            "TWITCH_BOT_ID": self.bot_id,
        }
        return [name for name, value in names.items() if not value]

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.client_secret, self.bot_token, self.refresh_token) if s)

    @classmethod
    def from_env(cls) -> TwitchConfig:
        window = env_float("TWITCH_RATE_WINDOW", 30.0, minimum=1.0)
        return cls(
            client_id=env_str("TWITCH_CLIENT_ID"),
            client_secret=env_str("TWITCH_CLIENT_SECRET"),
            bot_id=_twitch_user_id("TWITCH_BOT_ID"),
            channels=_twitch_channels("TWITCH_CHANNELS"),
            bot_token=_token("TWITCH_BOT_TOKEN", TWITCH_TOKEN_PREFIXES),
            refresh_token=_token("TWITCH_REFRESH_TOKEN", TWITCH_TOKEN_PREFIXES),
            api_url=_with_slash(env_str("TWITCH_API_URL") or TWITCH_API_URL),
            auth_url=_with_slash(env_str("TWITCH_AUTH_URL") or TWITCH_AUTH_URL),
            eventsub_url=env_str("TWITCH_EVENTSUB_URL") or TWITCH_EVENTSUB_URL,
            ignored_bots=_lower(env_list("IGNORED_BOTS", DEFAULT_IGNORED_BOTS)),
            rate_limit=RateLimit(env_int("TWITCH_RATE_LIMIT", 20, minimum=1), window),
            rate_limit_moderator=RateLimit(env_int("TWITCH_RATE_LIMIT_MODERATOR", 100, minimum=1), window),
        )


@dataclass(frozen=True, slots=True)
class DiscordConfig:
    token: str = field(default="", repr=False)
    channels: tuple[str, ...] = ()  # channel ids answered when only_listed
    # On: only `channels` get answers (none listed: none). Off: every channel the bot can read.
    only_listed: bool = False
    api_url: str = DISCORD_API_URL
    gateway_url: str = DISCORD_GATEWAY_URL
    allow_dms: bool = False
    # Servers the slash commands are synced to at start (there at once); none: synced
    # globally, for every server the bot is in.
    guilds: tuple[int, ...] = ()
    # The privileged Message Content intent. Off: only slash commands and mentions work
    # (Discord still sends the text of a message that mentions the bot).
    message_content: bool = True
    # discord.py already waits out Discord's own buckets; this keeps one channel from
    # hogging them and bounds what waits (Discord allows about 5 messages per 5 s).
    rate_limit: RateLimit = RateLimit(5, 5.0)

    @property
    def configured(self) -> bool:
        return bool(self.token)

    def missing(self) -> list[str]:
        return [] if self.token else ["DISCORD_TOKEN"]

    def secrets(self) -> tuple[str, ...]:
        return (self.token,) if self.token else ()

    @classmethod
    def from_env(cls) -> DiscordConfig:
        channels = _discord_channels("DISCORD_CHANNELS")
        return cls(
            token=_token("DISCORD_TOKEN", DISCORD_TOKEN_PREFIXES),
            channels=channels,
            only_listed=bool(channels),
            api_url=(env_str("DISCORD_API_URL") or DISCORD_API_URL).rstrip("/"),
            gateway_url=env_str("DISCORD_GATEWAY_URL") or DISCORD_GATEWAY_URL,
            allow_dms=env_bool("DISCORD_ALLOW_DMS", False),
            guilds=_snowflakes("DISCORD_GUILDS"),
            message_content=env_bool("DISCORD_MESSAGE_CONTENT", True),
            rate_limit=RateLimit(
                env_int("DISCORD_RATE_LIMIT", 5, minimum=1),
                env_float("DISCORD_RATE_WINDOW", 5.0, minimum=0.1),
            ),
        )


def check_env(platforms: Iterable[str]) -> None:
    """Read the settings of `platforms` once, so that a bad one stops start-up before anything runs."""
    wanted = set(platforms)
    if "twitch" in wanted:
        TwitchConfig.from_env()
    if "discord" in wanted:
        DiscordConfig.from_env()


def _twitch_user_id(name: str) -> str:
    value = env_str(name)
    if value and not value.isdecimal():
        # Shown only when it looks like a login: a token pasted here must not reach the log.
        login = value.lstrip("@").lower()
        if not TWITCH_LOGIN.fullmatch(login):
            login = ""
        shown = f"{value!r} (a login)" if login else "text that is not a number"
        raise SettingError(
            f"{name}: expected the bot account's numeric user id, got {shown}. Remove it and connect "
            f"the bot account from /twitch/connect/, or look the id up with "
            f"`twitch api get users -q login={login or '<bot login>'}`"
        )
    return value


def _twitch_channels(name: str) -> tuple[str, ...]:
    """Channel logins, lower case, each once; `#channel` and `@channel` are taken as written."""
    channels: dict[str, None] = {}
    for item in env_list(name):
        if "/" in item or "." in item:
            login = _first_path_part(item).lower()
            instead = f"{login} instead of {item}" if login else "the login at the end of the channel's URL"
            raise SettingError(f"{name}: write channel logins, not URLs: {instead}")
        login = item.lstrip("#@").lower()
        if not TWITCH_LOGIN.fullmatch(login):
            raise SettingError(
                f"{name}: {item!r} is not a Twitch login (letters, digits and _; "
                "several channels are separated by commas)"
            )
        channels[login] = None
    return tuple(channels)


def _first_path_part(url: str) -> str:
    """`foo` from `https://www.twitch.tv/foo` or `twitch.tv/foo/videos`; "" without a path."""
    parts = [part for part in re.split(r"[/?#]", url.split("://", 1)[-1]) if part]
    return parts[1] if len(parts) > 1 else ""


def _token(name: str, prefixes: tuple[str, ...]) -> str:
    value = env_str(name)
    for prefix in prefixes:
        if value.lower().startswith(prefix):
            written = value[: len(prefix)].strip()  # only the prefix: never the token
            raise SettingError(f"{name}: remove the {written!r} prefix, the token alone is expected")
    return value


def _discord_channels(name: str) -> tuple[str, ...]:
    """Channel ids, each once. A channel's link ends with its id: that id is suggested."""
    channels: dict[str, None] = {}
    for item in env_list(name):
        if "/" in item:
            last = item.rstrip("/").rsplit("/", 1)[-1]
            instead = f"{last} instead of {item}" if last.isdecimal() else "its id"
            raise SettingError(f"{name}: write channel ids, not links: {instead}")
        if not item.isdecimal():
            raise SettingError(
                f"{name}: expected channel ids (numbers: Developer Mode on, right-click the channel, "
                f"Copy Channel ID), got {item!r}"
            )
        channels[item] = None
    return tuple(channels)


def _snowflakes(name: str) -> tuple[int, ...]:
    """Discord ids (server ids for DISCORD_GUILDS), in order, each once."""
    ids: dict[int, None] = {}
    for item in env_list(name):
        if not item.isdecimal():
            raise SettingError(f"{name}: expected Discord ids (numbers) separated by commas, got {item!r}")
        ids[int(item)] = None
    return tuple(ids)


def _lower(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(n.strip().lstrip("@").lower() for n in names if n.strip())
