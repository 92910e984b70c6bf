"""The dashboard's setup checklist: what a new install still needs before chat gets answers.

Each step is read from what the bot already stores (accounts, the Twitch and Discord
settings, the LLM states, the history); the only write is chatbridge.stored_config's
one-time copy of DISCORD_CHANNELS into rows. The list is complete, and
hidden, once an account exists, one platform is connected and one reply went out there.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _

from chatbridge.config import TwitchConfig
from chatbridge.first_run import path_of
from chatbridge.models import AdapterState, ChannelSettings, Platform, TwitchApp, TwitchToken
from chatbridge.stored_config import discord_config
from llm.dashboard.stats import TierState, current_states
from llm.history.scopes import scopes
from llm.models import CascadeCall, Tier

# Where a reply counts as a first reply: chat, not the console or the web chat page.
TEST_PLATFORMS = ("console", "web")


@dataclass(frozen=True, slots=True)
class Step:
    key: str
    label: str
    done: bool
    detail: str  # what is there, or what to do next
    url: str
    link: str
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Checklist:
    steps: tuple[Step, ...]
    complete: bool

    @property
    def done(self) -> int:
        return sum(step.done for step in self.steps)

    @property
    def total(self) -> int:
        return len(self.steps)


def account_step() -> Step:
    done = get_user_model()._default_manager.filter(is_staff=True).exists()
    return Step(
        "account",
        _("An account to log in"),
        done,
        _("A staff account exists.") if done else _("Create one with `manage.py createsuperuser`."),
        path_of("admin:auth_user_changelist", "/admin/auth/user/"),
        _("Accounts"),
    )


def llm_found(states: dict[str, TierState]) -> TierState | None:
    return next((state for state in states.values() if state.shown == "up"), None)


def llm_step() -> Step:
    states = current_states(scopes(False))
    found = llm_found(states)
    if found is not None:
        detail = _("%(tier)s answers.") % {"tier": Tier(found.tier).label}
    else:
        local = states[Tier.LOCAL.value]
        detail = local.advice or _("No LLM found: chat gets fallback phrases.")
        detail += " " + _("See “The LLM cascade” in the README.")
    return Step(
        "llm",
        _("A language model"),
        found is not None,
        detail,
        path_of("admin:llm_liveswitches_changelist", "/admin/llm/liveswitches/"),
        _("Live switches"),
        optional=True,  # without one, chat still gets the streamer's phrases
    )


def twitch_todo() -> str:
    """What is left to connect Twitch, or "" when nothing is (env wins, the database fills in)."""
    env = TwitchConfig.from_env()
    if env.configured:
        return ""
    app = TwitchApp.objects.filter(pk=1).first()
    client_id = env.client_id or (app.client_id if app else "")
    # An Unreadable secret (stored with another key) is empty: not set.
    secret = env.client_secret or (app.client_secret if app else "")
    bot_id = env.bot_id or (app.bot_id if app else "")
    if not (client_id and secret):
        return _("Enter your Twitch application's client id and secret.")
    tokens = TwitchToken.objects.filter(user_id=bot_id) if bot_id else TwitchToken.objects.none()
    if not (env.bot_token or tokens.filter(needs_reconnect=False).exists()):
        if tokens.exists():
            return _("Twitch refused the bot account's token: reconnect it.")
        return _("Connect the bot's Twitch account.")
    joined = ChannelSettings.objects.filter(platform=Platform.TWITCH, joined=True).exists()
    if not (joined or env.channels):
        return _("Add the channel the bot should join.")
    return ""


def twitch_step(todo: str, *, optional: bool) -> Step:
    return Step(
        "twitch",
        _("Twitch connected"),
        not todo,
        todo or _("The bot has an account and a channel on Twitch."),
        path_of("twitch-connect", "/twitch/connect/"),
        _("Twitch set-up"),
        optional=optional,
    )


def discord_connected() -> bool:
    return discord_config().configured  # an Unreadable stored token is empty: not connected


def discord_step(done: bool, *, optional: bool) -> Step:
    return Step(
        "discord",
        _("Discord connected"),
        done,
        _("The bot has its Discord token.") if done else _("Enter your Discord bot's token."),
        path_of("discord-connect", "/discord/connect/"),
        _("Discord set-up"),
        optional=optional,
    )


def replied() -> bool:
    """A reply went out on a chat platform (the history, or the adapters' counters)."""
    return (
        CascadeCall.objects.exclude(platform__in=TEST_PLATFORMS).exists()
        or AdapterState.objects.filter(messages_out__gt=0).exists()
    )


def reply_step() -> Step:
    done = replied()
    return Step(
        "reply",
        _("A first reply in chat"),
        done,
        _("The bot has answered in chat.")
        if done
        else _("Start `runbot`, then type `!ask hello` in your chat."),
        path_of("webchat", "/chat/"),
        _("Try it in the web chat first"),
    )


def build() -> Checklist:
    account = account_step()
    twitch_left, discord_done = twitch_todo(), discord_connected()
    # One platform is enough: once one is connected, the other is optional.
    twitch = twitch_step(twitch_left, optional=discord_done and bool(twitch_left))
    discord = discord_step(discord_done, optional=not twitch_left and not discord_done)
    reply = reply_step()
    steps = (account, llm_step(), twitch, discord, reply)
    complete = account.done and (twitch.done or discord.done) and reply.done
    return Checklist(steps, complete)
