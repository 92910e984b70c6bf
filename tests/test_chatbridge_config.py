"""Platform settings from the environment: names, defaults, clear errors, secrets kept out of reprs."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbridge.config import DiscordConfig, RateLimit, TwitchConfig, check_env
from serdabot.env import SettingError
from tests.subprocesses import bot_env, free_port, manage


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
        "TWITCH_BOT_TOKEN": "tok3n-value",
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


def raised(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> str:
    """The one line a bad `name` stops start-up with."""
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingError) as caught:
        (DiscordConfig if name.startswith("DISCORD_") else TwitchConfig).from_env()
    message = str(caught.value)
    assert message.startswith(f"{name}: ") and "\n" not in message
    return message


def test_a_login_in_twitch_bot_id_says_where_the_id_comes_from(monkeypatch: pytest.MonkeyPatch) -> None:
    message = raised(monkeypatch, "TWITCH_BOT_ID", "SerdaBot")

    assert "numeric user id" in message and "'SerdaBot'" in message
    assert "/twitch/connect/" in message
    assert "twitch api get users -q login=serdabot" in message


def test_twitch_bot_id_never_echoes_what_is_not_a_login(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pasted into the wrong variable, a token must still stay out of the log."""
    message = raised(monkeypatch, "TWITCH_BOT_ID", "abcdefghijklmnopqrstuvwxyz0123")

    assert "abcdefghij" not in message
    assert "login=<bot login>" in message


@pytest.mark.parametrize(
    ("url", "login"),
    [
        ("https://www.twitch.tv/Streamer", "streamer"),
        ("twitch.tv/streamer/videos", "streamer"),
        ("http://twitch.tv/streamer?sr=a", "streamer"),
    ],
)
def test_a_url_in_twitch_channels_names_the_login_to_write(
    monkeypatch: pytest.MonkeyPatch, url: str, login: str
) -> None:
    message = raised(monkeypatch, "TWITCH_CHANNELS", f"other, {url}")

    assert message == f"TWITCH_CHANNELS: write channel logins, not URLs: {login} instead of {url}"


def test_twitch_channels_are_logins(monkeypatch: pytest.MonkeyPatch) -> None:
    message = raised(monkeypatch, "TWITCH_CHANNELS", "streamer; other")

    assert "'streamer; other' is not a Twitch login" in message and "commas" in message
    monkeypatch.setenv("TWITCH_CHANNELS", "@Streamer,#other,third_one")
    assert TwitchConfig.from_env().channels == ("streamer", "other", "third_one")


@pytest.mark.parametrize("name", ["TWITCH_BOT_TOKEN", "TWITCH_REFRESH_TOKEN"])
@pytest.mark.parametrize("prefix", ["oauth:", "OAuth:", "Bearer "])
def test_a_prefixed_twitch_token_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, name: str, prefix: str
) -> None:
    message = raised(monkeypatch, name, f"{prefix}tok3nvalue1234")

    assert message == f"{name}: remove the {prefix.strip()!r} prefix, the token alone is expected"
    assert "tok3n" not in message


@pytest.mark.parametrize("prefix", ["Bot ", "bot ", "Bearer "])
def test_a_prefixed_discord_token_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch, prefix: str
) -> None:
    message = raised(monkeypatch, "DISCORD_TOKEN", f"{prefix}MTAx.d1sc0rd-token")

    assert message == f"DISCORD_TOKEN: remove the {prefix.strip()!r} prefix, the token alone is expected"
    assert "d1sc0rd" not in message


def test_a_link_in_discord_channels_names_the_id_to_write(monkeypatch: pytest.MonkeyPatch) -> None:
    link = "https://discord.com/channels/111/4002/"

    assert raised(monkeypatch, "DISCORD_CHANNELS", f"4000,{link}") == (
        f"DISCORD_CHANNELS: write channel ids, not links: 4002 instead of {link}"
    )
    assert "Copy Channel ID" in raised(monkeypatch, "DISCORD_CHANNELS", "#general")
    monkeypatch.setenv("DISCORD_CHANNELS", "4000,4001,4000")
    assert DiscordConfig.from_env().channels == ("4000", "4001")


def test_check_env_reads_only_the_platforms_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "Bot MTAx.d1sc0rd-token")
    check_env({"twitch", "web"})
    with pytest.raises(SettingError, match="DISCORD_TOKEN"):
        check_env({"discord"})


@pytest.mark.parametrize(
    ("name", "value", "fix"),
    [
        ("TWITCH_BOT_ID", "serdabot", "/twitch/connect/"),
        ("TWITCH_CHANNELS", "https://www.twitch.tv/streamer", "streamer instead of"),
        ("TWITCH_BOT_TOKEN", "oauth:tok3nvalue1234", "remove the 'oauth:' prefix"),
        ("DISCORD_TOKEN", "Bot MTAx.d1sc0rd-token", "remove the 'Bot' prefix"),
    ],
)
def test_runbot_stops_on_one_line_before_anything_starts(
    local_dir: Path, name: str, value: str, fix: str
) -> None:
    twitch = {"TWITCH_CLIENT_ID": "cid", "TWITCH_CLIENT_SECRET": "s3cr3t-value", "TWITCH_BOT_ID": "2914196"}
    env = bot_env(local_dir, **{**twitch, "TWITCH_CHANNELS": "streamer", name: value})

    result = manage(env, "runbot", "--port", str(free_port()), timeout=30)

    assert result.returncode != 0
    output = (result.stdout + result.stderr).strip().splitlines()
    assert len(output) == 1, output
    assert output[0].startswith(f"Configuration error: {name}: ")
    assert fix in output[0]
    assert "tok3n" not in output[0] and "d1sc0rd" not in output[0]
