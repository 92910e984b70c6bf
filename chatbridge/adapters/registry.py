"""Which chat platforms this process runs: the environment, then what the setup pages stored."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Protocol

from chatbridge import stored_config
from chatbridge.adapters.status import AdapterStatus
from serdabot.env import SettingError

log = logging.getLogger("serdabot.bot")

PLATFORMS = ("twitch", "discord")
# Where each platform is connected from, on the bot's web server.
SETUP_PAGES = {"twitch": "twitch/connect/", "discord": "discord/connect/"}
PLATFORM_VARIABLES = {
    "twitch": "TWITCH_CLIENT_ID, TWITCH_CLIENT_SECRET and TWITCH_BOT_ID",
    "discord": "DISCORD_TOKEN",
}


class Adapter(Protocol):
    """A platform adapter: runs until cancelled, feeding chat events to the workers."""

    platform: str
    status: AdapterStatus

    async def run(self) -> None: ...

    def secrets(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class PlatformSetup:
    """What a platform's adapter would start with, as digests: never the secrets themselves."""

    platform: str
    configured: bool
    # Another application, bot account or token (never the secrets themselves: a digest).
    credentials: str = ""
    # The credentials and the last connection from the setup page: a change restarts the
    # adapter, running or failed.
    revision: str = ""
    # Why it is not configured, when something was set but not enough ("" otherwise).
    problem: str = ""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def read_setup(platform: str) -> PlatformSetup:
    """The platform's settings as they are now (sync: reads the database)."""
    try:
        return _read_setup(platform)
    except SettingError as exc:
        # A mistyped variable (a login in TWITCH_BOT_ID): said once, the other platform goes on.
        return PlatformSetup(platform, configured=False, problem=str(exc))


def _read_setup(platform: str) -> PlatformSetup:
    if platform == "twitch":
        twitch = stored_config.twitch_config()
        credentials = _digest(twitch.client_id, twitch.client_secret, twitch.bot_id)
        revision = _digest(credentials, stored_config.twitch_token_stamp(twitch.bot_id))
        problem = stored_config.twitch_problem(twitch)
        return PlatformSetup(platform, twitch.configured, credentials, revision, problem)
    if platform == "discord":
        discord = stored_config.discord_config()
        # The intent asked for is part of the connection: turned on in the portal and checked
        # again on the page, the adapter reconnects asking for it.
        credentials = _digest(discord.token, str(discord.message_content))
        problem = stored_config.discord_problem(discord)
        return PlatformSetup(platform, discord.configured, credentials, credentials, problem)
    raise ValueError(f"unknown chat platform {platform!r}")


def read_setups(platforms: set[str]) -> dict[str, PlatformSetup]:
    return {p: read_setup(p) for p in PLATFORMS if p in platforms}


def build_adapter(platform: str) -> Adapter:
    """A new adapter for `platform` (sync: the Discord one is given its stored settings)."""
    # Imported here: loading twitchio and discord.py costs time the console chat does not need.
    if platform == "twitch":
        from chatbridge.adapters.twitch import TwitchAdapter

        # It reads its settings (stored_config.twitch_config) at each start.
        return TwitchAdapter()
    if platform == "discord":
        from chatbridge.adapters.discord import DiscordAdapter

        return DiscordAdapter(stored_config.discord_config())
    raise ValueError(f"unknown chat platform {platform!r}")


def configured_adapters(platforms: set[str]) -> list[Adapter]:
    """The adapters of `platforms` that are configured now (sync: reads the database)."""
    adapters: list[Adapter] = []
    for platform, setup in read_setups(platforms).items():
        if setup.configured:
            adapters.append(build_adapter(platform))
        elif setup.problem:
            log.warning("%s not started: %s", platform.capitalize(), setup.problem)
    return adapters


def not_configured_message(platforms: set[str], setup_url: str = "") -> str:
    """`setup_url`: the bot's web server ("http://host:port/"), when this process runs it."""
    wanted = [p for p in PLATFORMS if p in platforms]
    needs = "; ".join(
        f"{p.capitalize()}: connect it at {setup_url or '/'}{SETUP_PAGES[p]} (or set {PLATFORM_VARIABLES[p]})"
        for p in wanted
    )
    return (
        f"No chat platform configured yet ({needs}). It starts as soon as it is connected, "
        "no restart needed. The console (`manage.py chat`) and web chat work meanwhile."
    )
