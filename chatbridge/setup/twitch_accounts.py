"""What a finished Twitch authorization leaves in the database, and what the page says about it.

The bot account's tokens are kept (encrypted): the bot reads and sends chat with them.
A broadcaster's token is not: see `authorize_channel`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from chatbridge.adapters.twitch.tokens import store_pair
from chatbridge.config import TwitchConfig
from chatbridge.models import ChannelSettings, Platform, TwitchApp, TwitchToken
from chatbridge.setup import twitch_oauth
from chatbridge.setup.twitch_oauth import Grant, Identity, TwitchError
from serdabot.broadcast import notify_changed
from serdabot.encryption import Unreadable

# Read chat over EventSub, send as the bot, and the chat-bot badge.
BOT_SCOPES = ("user:read:chat", "user:write:chat", "user:bot")
# The broadcaster lets the bot post in their channel without being a moderator.
CHANNEL_SCOPES = ("channel:bot",)
# What the running adapter listens for to pick up a new token, bot or channel.
CHANGED = "twitch-setup"


class MissingScopes(Exception):
    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            _("Twitch did not grant %(scopes)s: nothing was saved. Connect again and accept all of it.")
            % {"scopes": ", ".join(missing)}
        )


def _require(identity: Identity, scopes: tuple[str, ...]) -> None:
    missing = [s for s in scopes if s not in identity.scopes]
    if missing:
        raise MissingScopes(missing)


def connect_bot(grant: Grant, identity: Identity) -> None:
    """Keep the bot account's tokens (encrypted) and make it the bot."""
    _require(identity, BOT_SCOPES)
    with transaction.atomic():
        store_pair(
            identity.user_id,
            grant.access_token,
            grant.refresh_token,
            login=identity.login,
            scopes=" ".join(identity.scopes),
            connected=True,
        )
        app = TwitchApp.load()
        app.bot_id, app.bot_login = identity.user_id, identity.login
        app.save(update_fields=["bot_id", "bot_login", "updated"])
    notify_changed(CHANGED)


def authorize_channel(identity: Identity) -> ChannelSettings:
    """Record that a broadcaster granted channel:bot, and join their channel.

    The broadcaster's token itself is not kept: only the grant matters. Twitch
    remembers it for the application until the broadcaster disconnects the app in
    their Twitch settings, and the bot's own token carries the sending.
    """
    _require(identity, CHANNEL_SCOPES)
    return add_channel(identity.user_id, identity.login, authorized=True)


def add_channel(broadcaster_id: str, login: str, *, authorized: bool = False) -> ChannelSettings:
    """The channel's row, created or joined again. A renamed channel keeps its row (same id)."""
    twitch = ChannelSettings.objects.filter(platform=Platform.TWITCH)
    with transaction.atomic():
        row = twitch.filter(channel=login).first() or twitch.filter(broadcaster_id=broadcaster_id).first()
        if row is None:
            row = ChannelSettings(platform=Platform.TWITCH, channel=login)
        row.channel, row.broadcaster_id, row.joined = login, broadcaster_id, True
        row.bot_authorized = row.bot_authorized or authorized
        row.save()
    notify_changed(CHANGED)
    return row


def lookup_channel(config: TwitchConfig, login: str) -> tuple[str, str]:
    """(id, login) of the account with that login. TwitchError when there is none."""
    user = twitch_oauth.find_user(config, login, _lookup_token(config))
    if user is None:
        raise TwitchError(_("No Twitch account is called %(login)s.") % {"login": login})
    return user


def _lookup_token(config: TwitchConfig) -> str:
    """An app token when the client secret is known, else the bot's own token."""
    if config.client_id and config.client_secret:
        return twitch_oauth.app_token(config)
    row = TwitchToken.objects.filter(user_id=config.bot_id).first() if config.bot_id else None
    if config.client_id and row is not None and row.token and not row.needs_reconnect:
        return row.token
    raise TwitchError(_("Enter the application's client ID and secret first: the lookup needs them."))


class BotState(enum.Enum):
    NOT_CONNECTED = "not_connected"
    CONNECTED = "connected"
    RECONNECT = "reconnect"
    # TWITCH_BOT_TOKEN in the environment: the bot starts with it, nothing was stored yet.
    ENVIRONMENT = "environment"


@dataclass(frozen=True, slots=True)
class BotStatus:
    state: BotState
    login: str = ""
    user_id: str = ""


def bot_status(config: TwitchConfig) -> BotStatus:
    if not config.bot_id:
        return BotStatus(BotState.NOT_CONNECTED)
    app = TwitchApp.objects.filter(pk=1).first()
    login = app.bot_login if app is not None and app.bot_id == config.bot_id else ""
    row = TwitchToken.objects.filter(user_id=config.bot_id).first()
    if row is None:
        state = BotState.ENVIRONMENT if config.bot_token else BotState.NOT_CONNECTED
        return BotStatus(state, login, config.bot_id)
    login = row.login or login
    # A token stored with another key reads as Unreadable: as good as revoked here.
    unreadable = isinstance(row.token, Unreadable) or isinstance(row.refresh, Unreadable)
    if row.needs_reconnect or unreadable:
        return BotStatus(BotState.RECONNECT, login, config.bot_id)
    return BotStatus(BotState.CONNECTED, login, config.bot_id)
