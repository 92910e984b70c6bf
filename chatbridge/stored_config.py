"""Platform settings as the bot uses them: the environment, then what the setup pages stored.

The environment wins where it sets something (an operator's deliberate choice); the
database fills in the rest: the Twitch application and bot account connected from
`/twitch/connect/`, the Discord token from `/discord/connect/`, and the channels,
which are rows. `TWITCH_CHANNELS` and `DISCORD_CHANNELS` only seed those rows once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

from django.db import IntegrityError, transaction

from chatbridge.config import DiscordConfig, TwitchConfig
from chatbridge.models import ChannelSettings, DiscordBot, Platform, Seeded, TwitchApp, TwitchToken
from serdabot.encryption import SecretUnreadable, Unreadable
from serdabot.env import env_str

log = logging.getLogger("chatbridge.setup")

TWITCH_SEED = "TWITCH_CHANNELS"
DISCORD_SEED = "DISCORD_CHANNELS"


def seed_channels(name: str, platform: str, channels: tuple[str, ...]) -> bool:
    """Copy an environment channel list into rows, the first time only. True if it did.

    The list is what the bot read until now: its channels are joined, and rows it no longer
    named (made by an older version, which kept them) are paused rather than joined again.
    """
    keys = [c.strip().lstrip("#").lower() if platform == Platform.TWITCH else c.strip() for c in channels]
    try:
        with transaction.atomic():
            _, created = Seeded.objects.get_or_create(name=name)
            if not created:
                return False
            for key in keys:
                ChannelSettings.objects.update_or_create(
                    platform=platform, channel=key, defaults={"joined": True}
                )
            if keys:
                rows = ChannelSettings.objects.filter(platform=platform).exclude(channel__in=keys)
                rows.update(joined=False)
    except IntegrityError:
        return False  # another process (the web, the bot) seeded at the same moment
    if channels:
        log.info(
            "%s copied into %d channel row(s); edit them on the setup page from now on", name, len(channels)
        )
    return True


def joined_channels(platform: str) -> tuple[str, ...]:
    """The joined (not paused) channels, in the order they were added."""
    rows = ChannelSettings.objects.filter(platform=platform, joined=True).order_by("pk")
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


def twitch_problem(config: TwitchConfig) -> str:
    """Why Twitch cannot start, in one line naming the fix; "" when it can."""
    if config.configured:
        return ""
    if not config.client_secret and twitch_secret_unreadable():
        return str(SecretUnreadable("the stored Twitch client secret"))
    missing = config.missing()
    if len(missing) == 3:
        return ""  # nothing set: not connected yet, which the start-up message says
    return f"{', '.join(missing)} not set; connect Twitch at /twitch/connect/"


def twitch_token_stamp(bot_id: str) -> str:
    """When the setup page (or `twitchlogin`) last connected the bot account ("" never): a
    new connection shows here. Tokens twitchio refreshes or stores do not change it."""
    row = TwitchToken.objects.filter(user_id=bot_id).only("connected").first() if bot_id else None
    return row.connected.isoformat() if row is not None and row.connected is not None else ""


def fill_broadcaster_ids(ids: Mapping[str, str]) -> int:
    """Store the user ids the API gave for Twitch channels (login -> id) in rows that have
    none. An update, not a save: no change notice, nothing else in the row changes."""
    filled = 0
    for login, broadcaster_id in ids.items():
        filled += ChannelSettings.objects.filter(
            platform=Platform.TWITCH, channel=login, broadcaster_id=""
        ).update(broadcaster_id=broadcaster_id)
    return filled


def discord_problem(config: DiscordConfig) -> str:
    """Why Discord cannot start, when something was stored; "" otherwise."""
    if config.configured:
        return ""
    bot = DiscordBot.objects.filter(pk=1).first()
    if bot is not None and isinstance(bot.token, Unreadable):
        return str(SecretUnreadable("the stored Discord token"))
    return ""


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
    message_content = env.message_content
    if not env_str("DISCORD_MESSAGE_CONTENT") and bot is not None and bot.application_id and not env.token:
        # The page checked the stored token's application: asking for an intent Discord has
        # not granted gets the connection refused (close code 4014), so ask only for what is on.
        message_content = bot.message_content
    return dataclasses.replace(
        env, token=token, channels=channels, only_listed=only_listed, message_content=message_content
    )
