"""The "Discord" setup page: the bot token (checked against Discord, stored encrypted),
the invite link with the permissions the bot needs, the Message Content intent, and the
channels the bot answers in, picked from the servers it is in.

A picked channel is a `ChannelSettings` row with joined on; unpicking keeps the row (its
settings are not lost) with joined off. The running adapter follows the rows live.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from chatbridge.channel_settings import settings_cache
from chatbridge.config import DiscordConfig
from chatbridge.models import ChannelSettings, DiscordBot, Platform
from chatbridge.setup import discord_api
from chatbridge.setup.discord_api import DiscordError, Guild
from chatbridge.setup.discord_forms import SNOWFLAKE, DiscordTokenForm
from chatbridge.stored_config import discord_config
from serdabot.broadcast import notify_changed
from serdabot.encryption import Unreadable

log = logging.getLogger("chatbridge.setup")

SETUP_CHANGED = "discord-setup"  # the notice the bot (and the running adapter) listen for
# What each permission of the invite link is for (chatbridge/adapters/discord/invite.py).
WHY = {
    "read": gettext_lazy("see the channels and read the messages it answers"),
    "send": gettext_lazy("answer in the channel"),
    "threads": gettext_lazy("answer inside a thread, which follows its channel's settings"),
    "reply": gettext_lazy("answer as a reply to the question: Discord refuses a reply without it"),
}
PERMISSION_NAMES = {
    "view_channel": gettext_lazy("View Channels"),
    "send_messages": gettext_lazy("Send Messages"),
    "send_messages_in_threads": gettext_lazy("Send Messages in Threads"),
    "read_message_history": gettext_lazy("Read Message History"),
}
KINDS = {
    "text": gettext_lazy("text"),
    "announcement": gettext_lazy("announcements"),
    "forum": gettext_lazy("forum"),
    "voice": gettext_lazy("voice"),
    "stage": gettext_lazy("stage"),
}


@dataclass(frozen=True, slots=True)
class Pickable:
    """One checkbox of the channel list."""

    id: str
    guild_id: str
    name: str
    label: str  # "Server #channel", as the admin and the adapter name a row
    kind: str
    picked: bool


def label(guild: str, channel: str) -> str:
    # As chatbridge/adapters/discord/channels.py names a row it makes.
    return f"{guild} #{channel}"[:100]


@staff_member_required
def connect(request: HttpRequest) -> HttpResponse:
    return _page(request, DiscordTokenForm())


def _page(request: HttpRequest, token_form: DiscordTokenForm, status: int = 200) -> HttpResponse:
    # Imported here: discord.py is loaded by the bot's adapter, not by every page of the site.
    from chatbridge.adapters.discord.invite import NEEDED, SCOPES, invite_url, permissions

    env = DiscordConfig.from_env()
    bot = DiscordBot.objects.filter(pk=1).first() or DiscordBot()
    token = env.token or bot.token
    problem = ""
    if token and not bot.application_id:
        # A token from the environment, never checked here: ask Discord who it is.
        try:
            bot = _store_identity(discord_api.identify(env.api_url, token))
        except DiscordError as exc:
            problem = str(exc)
    servers = discord_api.Servers(guilds=(), capped=False)
    if token and not problem:
        try:
            servers = discord_api.guilds(env.api_url, token)
        except DiscordError as exc:
            problem = str(exc)
    rows = {r.channel: r for r in ChannelSettings.objects.filter(platform=Platform.DISCORD)}
    listed = [(guild, _pickables(guild, rows)) for guild in servers.guilds]
    shown = {p.id for _guild, pickables in listed for p in pickables}
    # Rows of channels Discord did not list (the bot left, the channel went, or Discord is
    # unreachable): still there, still switchable.
    others = [
        Pickable(r.channel, r.guild_id, r.label or r.channel, r.label, "", r.joined)
        for channel, r in sorted(rows.items())
        if channel not in shown
    ]
    context: dict[str, Any] = {
        "token_form": token_form,
        "token_state": _token_state(env, bot),
        "bot": bot,
        "problem": problem,
        "invite_url": invite_url(bot.application_id) if bot.application_id else "",
        "permissions_value": permissions(),
        "permissions": [(PERMISSION_NAMES[n.name], WHY[n.why]) for n in NEEDED],
        "scopes": " ".join(SCOPES),
        "checked": bool(bot.application_id),
        "intent_on": bot.message_content,
        # Whether the bot asks for the intent when it connects: Discord then refuses the
        # connection while the portal has it off.
        "intent_asked": discord_config().message_content,
        "only_listed": bot.only_listed,
        "guilds": listed,
        "guilds_capped": servers.capped,
        "max_guilds": discord_api.MAX_GUILDS,
        "others": others,
        "has_token": bool(token),
    }
    return render(request, "chatbridge/setup/discord_connect.html", context, status=status)


def _token_state(env: DiscordConfig, bot: DiscordBot) -> str:
    if env.token:
        return "environment"
    if isinstance(bot.token, Unreadable):
        return "unreadable"
    return "set" if bot.token else "not_set"


def _pickables(guild: Guild, rows: dict[str, ChannelSettings]) -> list[Pickable]:
    pickables = []
    for channel in guild.channels:
        row = rows.get(channel.id)
        pickables.append(
            Pickable(
                channel.id,
                guild.id,
                channel.name,
                label(guild.name, channel.name),
                str(KINDS.get(channel.kind, channel.kind)),
                row is not None and row.joined,
            )
        )
    return pickables


def _store_identity(identity: discord_api.BotIdentity, token: str | None = None) -> DiscordBot:
    bot = DiscordBot.load()
    if token is not None:
        bot.token = token
    bot.application_id = identity.application_id
    bot.bot_name = identity.bot_name
    bot.message_content = identity.message_content
    bot.save()
    return bot


@staff_member_required
@require_POST
def save_token(request: HttpRequest) -> HttpResponse:
    env = DiscordConfig.from_env()
    if env.token:
        messages.error(request, _("DISCORD_TOKEN is set in the environment, which wins: change it there."))
        return redirect("discord-connect")
    form = DiscordTokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    token = form.cleaned_data["token"]
    try:
        identity = discord_api.identify(env.api_url, token)
    except DiscordError as exc:
        not_saved = _("The token was not saved.")
        form.add_error("token", f"{exc} {not_saved}")
        return _page(request, form, status=400)
    _store_identity(identity, token)
    log.info("Discord: bot token saved (application %s)", identity.application_id)
    notify_changed(SETUP_CHANGED)
    messages.success(request, _("Token saved: the bot is %(name)s.") % {"name": identity.bot_name})
    return redirect("discord-connect")


@staff_member_required
@require_POST
def check(request: HttpRequest) -> HttpResponse:
    """Ask Discord again (after switching the intent on in the portal, say)."""
    env = DiscordConfig.from_env()
    bot = DiscordBot.objects.filter(pk=1).first() or DiscordBot()
    token = env.token or bot.token
    if not token:
        messages.error(request, _("Enter the bot token first."))
        return redirect("discord-connect")
    try:
        identity = discord_api.identify(env.api_url, token)
    except DiscordError as exc:
        messages.error(request, str(exc))
        return redirect("discord-connect")
    _store_identity(identity)
    notify_changed(SETUP_CHANGED)
    messages.success(request, _("Checked with Discord."))
    return redirect("discord-connect")


@staff_member_required
@require_POST
def forget_token(request: HttpRequest) -> HttpResponse:
    bot = DiscordBot.load()
    bot.token = ""
    bot.application_id = bot.bot_name = ""
    bot.message_content = False
    bot.save()
    log.info("Discord: stored bot token removed")
    notify_changed(SETUP_CHANGED)
    messages.success(request, _("The stored token is removed."))
    return redirect("discord-connect")


@staff_member_required
@require_POST
def save_channels(request: HttpRequest) -> HttpResponse:
    """The "only the channels I pick" switch and the picked channels.

    Each channel the page showed comes back as `shown` ("server id:channel id") with its
    `label-<id>`; the picked ones as `channel`.
    """
    shown: dict[str, tuple[str, str]] = {}
    for value in request.POST.getlist("shown"):
        guild_id, _sep, channel = value.partition(":")
        if SNOWFLAKE.fullmatch(channel) and (not guild_id or SNOWFLAKE.fullmatch(guild_id)):
            shown[channel] = (guild_id, request.POST.get(f"label-{channel}", "")[:100])
    picked = set(request.POST.getlist("channel")) & shown.keys()
    only_listed = request.POST.get("only_listed") == "on"
    with transaction.atomic():
        bot = DiscordBot.load()
        if bot.only_listed != only_listed:
            DiscordBot.objects.filter(pk=bot.pk).update(only_listed=only_listed)
        _apply_picks(shown, picked)
        # One reload and one notice for all the rows (a queryset update sends no signal).
        transaction.on_commit(_announce)
    if only_listed and not ChannelSettings.objects.filter(platform=Platform.DISCORD, joined=True).exists():
        messages.warning(request, _("No channel is picked: the bot answers nowhere on Discord."))
    else:
        messages.success(request, _("Discord channels saved."))
    return redirect("discord-connect")


def _apply_picks(shown: dict[str, tuple[str, str]], picked: set[str]) -> None:
    rows = {
        r.channel: r for r in ChannelSettings.objects.filter(platform=Platform.DISCORD, channel__in=shown)
    }
    new = []
    for channel, (guild_id, name) in shown.items():
        row = rows.get(channel)
        if row is None:
            if channel in picked:  # an unpicked channel needs no row
                new.append(
                    ChannelSettings(
                        platform=Platform.DISCORD, channel=channel, label=name, guild_id=guild_id, joined=True
                    )
                )
            continue
        changes: dict[str, Any] = {}
        if guild_id and row.guild_id != guild_id:
            changes["guild_id"] = guild_id
        if name and row.label != name:
            changes["label"] = name  # the channel (or its server) was renamed
        if changes:
            ChannelSettings.objects.filter(pk=row.pk).update(**changes, updated=timezone.now())
    ChannelSettings.objects.bulk_create(new, ignore_conflicts=True)
    # Set after the insert, on whatever row is there now: the adapter may have made a channel's
    # row (not joined, no server) between the read above and the insert, which then skips it.
    discord = ChannelSettings.objects.filter(platform=Platform.DISCORD)
    for row in new:
        if row.guild_id:
            discord.filter(channel=row.channel, guild_id="").update(guild_id=row.guild_id)
    discord.filter(channel__in=picked, joined=False).update(joined=True, updated=timezone.now())
    discord.filter(channel__in=shown.keys() - picked, joined=True).update(
        joined=False, updated=timezone.now()
    )


def _announce() -> None:
    settings_cache.load()
    notify_changed("channels")
    notify_changed(SETUP_CHANGED)
