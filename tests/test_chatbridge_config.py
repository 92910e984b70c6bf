"""Platform settings from the environment: names, defaults, clear errors, secrets kept out of reprs."""

from __future__ import annotations

import pytest

from chatbridge.config import DiscordConfig, RateLimit, TwitchConfig
from serdabot.env import SettingError


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("TWITCH_", "DISCORD_", "IGNORED_BOTS")):
            monkeypatch.delenv(name)


def test_twitch_defaults_are_twitchs_own() -> None:
    config = TwitchConfig.from_env()

    assert not config.configured
    assert config.api_url == "https://api.twitch.tv/helix/"
    assert config.auth_url == "https://id.twitch.tv/"
    assert config.eventsub_url == "wss://eventsub.wss.twitch.tv/ws"
    assert config.rate_limit == RateLimit(20, 30.0)
    assert config.rate_limit_moderator == RateLimit(100, 30.0)
    assert "nightbot" in config.ignored_bots and "streamelements" in config.ignored_bots


def test_twitch_settings_are_read_and_tidied(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "TWITCH_CLIENT_ID": "cid",
        "TWITCH_CLIENT_SECRET": "s3cr3t-value",
        "TWITCH_BOT_ID": "2914196",
        "TWITCH_CHANNELS": "#Streamer, otherchan,streamer",
        "TWITCH_BOT_TOKEN": "oauth:tok3n-value",
        "TWITCH_API_URL": "http://127.0.0.1:8080/mock",
        "IGNORED_BOTS": "@NightBot, monbot",
        "TWITCH_RATE_LIMIT": "15",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    config = TwitchConfig.from_env()

    assert config.configured
    assert config.channels == ("streamer", "otherchan")
    assert config.bot_token == "tok3n-value"
    assert config.api_url == "http://127.0.0.1:8080/mock/"
    assert config.ignored_bots == ("nightbot", "monbot")
    assert config.rate_limit == RateLimit(15, 30.0)
    assert "s3cr3t-value" not in repr(config) and "tok3n-value" not in repr(config)


def test_a_bad_number_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWITCH_RATE_LIMIT", "beaucoup")
    with pytest.raises(SettingError, match="TWITCH_RATE_LIMIT"):
        TwitchConfig.from_env()
    monkeypatch.setenv("DISCORD_ALLOW_DMS", "peut-être")
    with pytest.raises(SettingError, match="DISCORD_ALLOW_DMS"):
        DiscordConfig.from_env()


def test_discord_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not DiscordConfig.from_env().configured
    monkeypatch.setenv("DISCORD_TOKEN", "d1sc0rd-token")
    monkeypatch.setenv("DISCORD_CHANNELS", "4000, 4001")
    monkeypatch.setenv("DISCORD_API_URL", "http://127.0.0.1:9000/api/v10/")
    config = DiscordConfig.from_env()

    assert config.configured and config.channels == ("4000", "4001")
    assert config.api_url == "http://127.0.0.1:9000/api/v10"
    assert config.gateway_url == "wss://gateway.discord.gg/"
    assert not config.allow_dms
    assert "d1sc0rd-token" not in repr(config)
