"""Platform settings as the bot uses them: the environment, then what the setup pages stored.

The environment wins where it sets something (an operator's deliberate choice); the
database fills in the rest: the Twitch application and bot account connected from
`/twitch/connect/`, the Discord token from `/discord/connect/`, and the channels,
which are rows. `TWITCH_CHANNELS` and `DISCORD_CHANNELS` only seed those rows once.
"""

from __future__ import annotations

import dataclasses
import logging

from django.db import transaction

from chatbridge.config import DiscordConfig, TwitchConfig
from chatbridge.models import ChannelSettings, DiscordBot, Platform, Seeded, TwitchApp
from serdabot.encryption import Unreadable

log = logging.getLogger("chatbridge.setup")

TWITCH_SEED = "TWITCH_CHANNELS"
DISCORD_SEED = "DISCORD_CHANNELS"


def seed_channels(name: str, platform: str, channels: tuple[str, ...]) -> bool:
    """Copy an environment channel list into rows, the first time only. True if it did."""
    with transaction.atomic():
        if Seeded.objects.filter(name=name).exists():
            return False
        for channel in channels:
            key = channel.strip().lstrip("#").lower() if platform == Platform.TWITCH else channel.strip()
            ChannelSettings.objects.get_or_create(platform=platform, channel=key)
        Seeded.objects.create(name=name)
    if channels:
        log.info(
            "%s copied into %d channel row(s); edit them on the setup page from now on", name, len(channels)
        )
    return True


def joined_channels(platform: str) -> tuple[str, ...]:
    rows = ChannelSettings.objects.filter(platform=platform, joined=True).order_by("channel")
    return tuple(rows.values_list("channel", flat=True))


def twitch_config() -> TwitchConfig:
    """The Twitch settings: the environment's, completed from the database (sync)."""
    env = TwitchConfig.from_env()
    seed_channels(TWITCH_SEED, Platform.TWITCH, env.channels)
    app = TwitchApp.objects.filter(pk=1).first()
    client_id, client_secret, bot_id = env.client_id, env.client_secret, env.bot_id
    if app is not None:
        client_id = client_id or app.client_id
        # An Unreadable secret (the key changed) is empty: "not set", and the page says why.
        client_secret = client_secret or app.client_secret
        bot_id = bot_id or app.bot_id
    return dataclasses.replace(
        env,
        client_id=client_id,
        client_secret=client_secret,
        bot_id=bot_id,
        channels=joined_channels(Platform.TWITCH),
    )


def twitch_secret_unreadable() -> bool:
    app = TwitchApp.objects.filter(pk=1).first()
    return app is not None and isinstance(app.client_secret, Unreadable)


def discord_config() -> DiscordConfig:
    """The Discord settings: the environment's, completed from the database (sync)."""
    env = DiscordConfig.from_env()
    seeded = seed_channels(DISCORD_SEED, Platform.DISCORD, env.channels)
    bot = DiscordBot.objects.filter(pk=1).first()
    if seeded and env.channels:
        # A list in DISCORD_CHANNELS meant "only these": the rows say so from now on.
        bot = bot or DiscordBot.load()
        DiscordBot.objects.filter(pk=bot.pk).update(only_listed=True)
        bot.only_listed = True
    token = env.token or (bot.token if bot is not None else "")
    only_listed = bot is not None and bot.only_listed
    channels = joined_channels(Platform.DISCORD) if only_listed else ()
    return dataclasses.replace(env, token=token, channels=channels, only_listed=only_listed)
