"""Chat platform settings, read from the environment.

Secrets are kept out of `repr()` so a settings object can be logged or shown in a
traceback without leaking a token.
"""

from __future__ import annotations

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
        return bool(self.client_id and self.client_secret and self.bot_id and self.channels)

    def missing(self) -> list[str]:
        names = {
            "TWITCH_CLIENT_ID": self.client_id,
            "TWITCH_CLIENT_SECRET": self.client_secret,
            "TWITCH_BOT_ID": self.bot_id,
            "TWITCH_CHANNELS": ",".join(self.channels),
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
            bot_id=env_str("TWITCH_BOT_ID"),
            channels=tuple(dict.fromkeys(c.lstrip("#").lower() for c in env_list("TWITCH_CHANNELS"))),
            bot_token=env_str("TWITCH_BOT_TOKEN").removeprefix("oauth:"),
            refresh_token=env_str("TWITCH_REFRESH_TOKEN"),
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
        channels = tuple(env_list("DISCORD_CHANNELS"))
        return cls(
            token=env_str("DISCORD_TOKEN"),
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
