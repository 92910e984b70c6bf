"""Which chat platforms this process runs, from the environment."""

from __future__ import annotations

import logging
from typing import Protocol

from chatbridge.adapters.status import AdapterStatus
from chatbridge.config import DiscordConfig, TwitchConfig

log = logging.getLogger("serdabot.bot")


class Adapter(Protocol):
    """A platform adapter: runs until cancelled, feeding chat events to the workers."""

    platform: str
    status: AdapterStatus

    async def run(self) -> None: ...

    def secrets(self) -> tuple[str, ...]: ...


PLATFORM_VARIABLES = {
    "twitch": "TWITCH_CLIENT_ID, TWITCH_CLIENT_SECRET, TWITCH_BOT_ID and TWITCH_CHANNELS",
    "discord": "DISCORD_TOKEN",
}


def configured_adapters(platforms: set[str]) -> list[Adapter]:
    """The adapters of `platforms` whose credentials are set."""
    # Imported here: loading twitchio and discord.py costs time the console chat does not need.
    adapters: list[Adapter] = []
    if "twitch" in platforms:
        twitch = TwitchConfig.from_env()
        if twitch.configured:
            from chatbridge.adapters.twitch import TwitchAdapter

            adapters.append(TwitchAdapter(twitch))
        elif len(twitch.missing()) < 4:
            log.warning("Twitch not started: %s not set", ", ".join(twitch.missing()))
    if "discord" in platforms:
        discord = DiscordConfig.from_env()
        if discord.configured:
            from chatbridge.adapters.discord import DiscordAdapter

            adapters.append(DiscordAdapter(discord))
    return adapters


def not_configured_message(platforms: set[str]) -> str:
    wanted = [p for p in ("twitch", "discord") if p in platforms]
    needs = "; ".join(f"{p.capitalize()}: set {PLATFORM_VARIABLES[p]}" for p in wanted)
    return f"No chat platform configured ({needs}). The console (`manage.py chat`) and web chat still work."
