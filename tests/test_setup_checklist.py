"""The dashboard's setup checklist: each step read from what the install really has."""

from __future__ import annotations

import os
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from chatbridge.models import AdapterState, ChannelSettings, DiscordBot, Platform, TwitchApp, TwitchToken
from llm.dashboard.setup_checklist import build
from tests.dashboard_history import call, event, staff_client

pytestmark = pytest.mark.django_db
__all__ = ["staff_client"]

BOT_ID = "2914196"


@pytest.fixture(autouse=True)
def no_platform_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh install: nothing from the developer's environment."""
    for name in list(os.environ):
        if name.startswith(("TWITCH_", "DISCORD_")):
            monkeypatch.delenv(name)


def steps() -> dict[str, tuple[bool, str]]:
    return {step.key: (step.done, step.detail) for step in build().steps}


def connect_twitch(*, needs_reconnect: bool = False, channel: bool = True) -> None:
    TwitchApp.objects.create(pk=1, client_id="app-id", client_secret="app-secret-123", bot_id=BOT_ID)
    TwitchToken.objects.create(
        user_id=BOT_ID, token="user-token-1", refresh="refresh-1", needs_reconnect=needs_reconnect
    )
    if channel:
        ChannelSettings.objects.create(platform=Platform.TWITCH, channel="streamer", joined=True)


def shown_steps(html: str) -> dict[str, str]:
    """Each step on the page: its key and its state (done, to do, optional)."""
    found = re.findall(r'data-step="(\w+)".*?<span class="muted small">([^<]+)</span>', html, re.S)
    return {key: state.strip() for key, state in found}


def test_a_fresh_install_shows_every_step_with_its_link(staff_client: Client) -> None:
    html = staff_client.get("/").content.decode()

    assert 'id="setup-checklist"' in html
    assert "Getting started" in html
    assert shown_steps(html) == {
        "account": "done",
        "llm": "optional",
        "twitch": "to do",
        "discord": "to do",
        "reply": "to do",
    }
    assert 'href="/twitch/connect/"' in html
    assert 'href="/discord/connect/"' in html
    assert 'href="/chat/"' in html
    assert "1 of 5 done" in html


def test_the_panels_refresh_without_it(staff_client: Client) -> None:
    assert 'id="setup-checklist"' not in staff_client.get("/?partial=1").content.decode()


def test_twitch_connected_from_the_page_needs_app_bot_token_and_a_channel() -> None:
    connect_twitch()

    assert steps()["twitch"] == (True, "The bot has an account and a channel on Twitch.")


def test_twitch_says_what_is_missing_first() -> None:
    assert steps()["twitch"] == (False, "Enter your Twitch application's client id and secret.")

    TwitchApp.objects.create(pk=1, client_id="app-id", client_secret="app-secret-123", bot_id=BOT_ID)
    assert steps()["twitch"] == (False, "Connect the bot's Twitch account.")

    TwitchToken.objects.create(user_id=BOT_ID, token="user-token-1", refresh="refresh-1")
    assert steps()["twitch"] == (False, "Add the channel the bot should join.")

    ChannelSettings.objects.create(platform=Platform.TWITCH, channel="streamer", joined=False)
    assert not steps()["twitch"][0]  # paused: not joined


def test_a_revoked_twitch_token_asks_to_reconnect() -> None:
    connect_twitch(needs_reconnect=True)

    assert steps()["twitch"] == (False, "Twitch refused the bot account's token: reconnect it.")


def test_twitch_configured_in_the_environment_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "TWITCH_CLIENT_ID": "env-id",
        "TWITCH_CLIENT_SECRET": "env-secret-123",
        "TWITCH_BOT_ID": BOT_ID,
        "TWITCH_CHANNELS": "streamer",
    }.items():
        monkeypatch.setenv(name, value)

    assert steps()["twitch"][0]


def test_discord_connected_by_the_page_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert steps()["discord"] == (False, "Enter your Discord bot's token.")

    DiscordBot.objects.create(pk=1, token="discord-token-123")
    assert steps()["discord"][0]

    DiscordBot.objects.all().delete()
    monkeypatch.setenv("DISCORD_TOKEN", "discord-token-456")
    assert steps()["discord"][0]


def test_one_platform_is_enough_the_other_becomes_optional() -> None:
    DiscordBot.objects.create(pk=1, token="discord-token-123")

    twitch = next(step for step in build().steps if step.key == "twitch")
    assert not twitch.done and twitch.optional


def test_a_reply_in_the_web_chat_or_console_is_not_a_first_reply() -> None:
    call(timezone.now(), "fallback", platform="web")
    call(timezone.now(), "fallback", platform="console")
    assert not steps()["reply"][0]

    call(timezone.now(), "fallback", platform="twitch")
    assert steps()["reply"][0]


def test_a_reply_counted_by_an_adapter_is_a_first_reply() -> None:
    AdapterState.objects.create(platform=Platform.DISCORD, messages_out=0)
    assert not steps()["reply"][0]

    AdapterState.objects.filter(platform=Platform.DISCORD).update(messages_out=1)
    assert steps()["reply"][0]


def test_the_llm_step_follows_the_state_the_dashboard_shows() -> None:
    llm = steps()["llm"]
    assert not llm[0]
    assert "README" in llm[1]

    event(timezone.now(), "local", "up")  # as the history writer records it
    assert steps()["llm"] == (True, "Local LLM answers.")


def test_it_is_hidden_once_the_install_answers_in_chat(staff_client: Client) -> None:
    connect_twitch()
    call(timezone.now(), "fallback", platform="twitch")

    assert build().complete
    assert 'id="setup-checklist"' not in staff_client.get("/").content.decode()


def test_without_staff_the_account_step_is_left() -> None:
    User.objects.create_user("viewer", password="x")

    assert steps()["account"] == (False, "Create one with `manage.py createsuperuser`.")
