"""Channel settings (defaults, the in-memory snapshot), adapter state and the Twitch token in the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.test import Client

from chatbridge.channel_settings import ChannelConfig, ChannelSettingsCache, defaults, settings_cache
from chatbridge.models import AdapterState, ChannelSettings, TwitchToken

TOKEN = "oauth-token-do-not-show-1234"
REFRESH = "refresh-do-not-show-5678"


def test_new_channels_get_sensible_defaults() -> None:
    config = defaults()

    assert config.commands == {"ask", "chill", "mention"}
    assert (config.user_cooldown, config.channel_cooldown) == (30, 5)
    assert config.moderators_bypass and not config.cooldown_notice
    assert config.fallback_mode == ""  # the global FALLBACK_MODE
    assert config.reply_queue_limit == 10
    assert ChannelSettingsCache().get("twitch", "never_seen") == config


@pytest.mark.django_db
def test_a_row_overrides_the_defaults_for_its_channel_only() -> None:
    ChannelSettings.objects.create(
        platform="twitch",
        channel="streamer",
        chill_enabled=False,
        user_cooldown=60,
        fallback_mode="minimal",
        extra_names="robot, @le_bot ,",
    )
    cache = ChannelSettingsCache()
    cache.load()

    config = cache.get("twitch", "Streamer")  # logins are case-insensitive
    assert config.commands == {"ask", "mention"}
    assert config.user_cooldown == 60 and config.fallback_mode == "minimal"
    assert config.extra_names == ("robot", "le_bot")
    assert cache.get("discord", "streamer") == defaults()


@pytest.mark.django_db
def test_one_row_per_platform_and_channel() -> None:
    ChannelSettings.objects.create(platform="twitch", channel="streamer")
    with pytest.raises(IntegrityError):
        ChannelSettings.objects.create(platform="twitch", channel="streamer")


@pytest.mark.django_db
def test_validation_normalises_twitch_logins_and_refuses_an_empty_queue() -> None:
    row = ChannelSettings(platform="twitch", channel="#StreamER", reply_queue_limit=0)
    with pytest.raises(ValidationError, match="at least one"):
        row.full_clean()
    row.reply_queue_limit = 5
    row.full_clean()
    assert row.channel == "streamer"


@pytest.mark.django_db
def test_ensure_creates_rows_for_configured_channels() -> None:
    ChannelSettings.objects.create(platform="twitch", channel="streamer", user_cooldown=99)
    cache = ChannelSettingsCache()
    cache.ensure("twitch", ["streamer", "OtherChan"])

    assert sorted(ChannelSettings.objects.values_list("channel", flat=True)) == ["otherchan", "streamer"]
    assert cache.get("twitch", "streamer").user_cooldown == 99  # an existing row is left alone


@pytest.mark.django_db(transaction=True)
def test_saving_a_row_reloads_the_shared_snapshot() -> None:
    settings_cache.load()
    row = ChannelSettings.objects.create(platform="twitch", channel="streamer", cooldown_notice=True)
    assert settings_cache.get("twitch", "streamer").cooldown_notice

    row.cooldown_notice = False
    row.save()
    assert not settings_cache.get("twitch", "streamer").cooldown_notice
    row.delete()
    assert settings_cache.get("twitch", "streamer") == defaults()


def test_a_snapshot_is_immutable() -> None:
    config = ChannelConfig.from_row(ChannelSettings(platform="twitch", channel="x"))
    with pytest.raises(AttributeError):
        config.user_cooldown = 0  # type: ignore[misc]


@pytest.mark.django_db
def test_the_twitch_token_never_shows_in_the_admin_or_in_reprs() -> None:
    token = TwitchToken.objects.create(user_id="2914196", token=TOKEN, refresh=REFRESH)
    User.objects.create_superuser("streamer", "s@example.com", "a-long-test-password-42")
    client = Client()
    client.login(username="streamer", password="a-long-test-password-42")

    pages = [
        client.get("/admin/chatbridge/twitchtoken/"),
        client.get(f"/admin/chatbridge/twitchtoken/{token.pk}/change/"),
        client.get("/admin/chatbridge/twitchtoken/?q=oauth"),
    ]
    for page in pages:
        assert page.status_code == 200
        body = page.content.decode()
        assert TOKEN not in body and REFRESH not in body
    assert "stored (hidden)" in pages[0].content.decode()
    assert TOKEN not in repr(token) and TOKEN not in str(token)


@pytest.mark.django_db
def test_adapter_state_is_read_only_in_the_admin() -> None:
    AdapterState.objects.create(
        platform="discord", state="failed", last_error="Discord refused DISCORD_TOKEN"
    )
    User.objects.create_superuser("streamer", "s@example.com", "a-long-test-password-42")
    client = Client()
    client.login(username="streamer", password="a-long-test-password-42")

    page = client.get("/admin/chatbridge/adapterstate/")
    assert page.status_code == 200 and "Discord refused DISCORD_TOKEN" in page.content.decode()
    assert client.get("/admin/chatbridge/adapterstate/add/").status_code == 403


@pytest.mark.django_db
def test_channel_settings_are_edited_in_the_admin() -> None:
    User.objects.create_superuser("streamer", "s@example.com", "a-long-test-password-42")
    client = Client()
    client.login(username="streamer", password="a-long-test-password-42")

    response = client.post(
        "/admin/chatbridge/channelsettings/add/",
        {
            "platform": "twitch",
            "channel": "#NewChannel",
            "label": "",
            "ask_enabled": "on",
            "mention_enabled": "on",
            "user_cooldown": "45",
            "channel_cooldown": "0",
            "moderators_bypass": "on",
            "fallback_mode": "silent",
            "extra_names": "robot",
            "reply_queue_limit": "5",
            "bot_enabled": "on",
            "llm_enabled": "on",
            "persona": "english",
            "language": "en",
            "ask_prompt": "  You are a pirate.  ",
            "joined": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    row = ChannelSettings.objects.get()
    assert (row.channel, row.chill_enabled, row.user_cooldown, row.fallback_mode) == (
        "newchannel",
        False,
        45,
        "silent",
    )
    assert row.joined  # added from the admin: read at once


@pytest.mark.django_db
def test_a_channel_is_paused_and_resumed_from_the_admin_list() -> None:
    row = ChannelSettings.objects.create(platform="twitch", channel="streamer")
    User.objects.create_superuser("streamer", "s@example.com", "a-long-test-password-42")
    client = Client()
    client.login(username="streamer", password="a-long-test-password-42")
    page = client.get("/admin/chatbridge/channelsettings/")
    assert 'name="form-0-joined"' in page.content.decode()

    def list_edit(joined: bool) -> None:
        data = {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": str(row.pk),
            "form-0-ask_enabled": "on",
            "form-0-chill_enabled": "on",
            "form-0-mention_enabled": "on",
            "form-0-user_cooldown": "30",
            "form-0-channel_cooldown": "5",
            "_save": "Save",
        }
        if joined:
            data["form-0-joined"] = "on"
        response = client.post("/admin/chatbridge/channelsettings/", data)
        assert response.status_code == 302, response.content.decode()[:2000]

    list_edit(joined=False)
    assert not ChannelSettings.objects.get().joined
    list_edit(joined=True)
    assert ChannelSettings.objects.get().joined


@pytest.mark.django_db
def test_a_persona_and_a_language_that_disagree_are_refused() -> None:
    row = ChannelSettings(platform="twitch", channel="streamer", persona="english", language="fr")
    with pytest.raises(ValidationError) as refused:
        row.full_clean()
    assert "language" in refused.value.message_dict
    ChannelSettings(platform="twitch", channel="streamer", persona="neutral_fr", language="fr").full_clean()
    ChannelSettings(platform="twitch", channel="other", persona="english", language="en").full_clean()
