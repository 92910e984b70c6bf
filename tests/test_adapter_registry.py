"""Which adapters `runbot` starts: the configured ones, limited by `--platform`."""

from __future__ import annotations

import logging

import pytest

from chatbridge.adapters.registry import configured_adapters, not_configured_message
from chatbridge.bot import cancel, start_adapters

TWITCH = {
    "TWITCH_CLIENT_ID": "cid",
    "TWITCH_CLIENT_SECRET": "secret-1234",
    "TWITCH_BOT_ID": "2914196",
    "TWITCH_CHANNELS": "streamer",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*TWITCH, "DISCORD_TOKEN", "DISCORD_CHANNELS"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def configure_both(env: pytest.MonkeyPatch) -> None:
    for name, value in TWITCH.items():
        env.setenv(name, value)
    env.setenv("DISCORD_TOKEN", "discord-token-1234")


@pytest.mark.parametrize(
    ("platforms", "started"),
    [
        ({"twitch", "discord"}, ["twitch", "discord"]),
        ({"twitch"}, ["twitch"]),
        ({"discord"}, ["discord"]),
        (set(), []),
    ],
)
def test_only_the_asked_platforms_start(
    env: pytest.MonkeyPatch, platforms: set[str], started: list[str]
) -> None:
    configure_both(env)
    assert [a.platform for a in configured_adapters(platforms)] == started


def test_nothing_starts_without_credentials(env: pytest.MonkeyPatch) -> None:
    assert configured_adapters({"twitch", "discord"}) == []
    message = not_configured_message({"twitch", "discord"})
    assert "TWITCH_CLIENT_ID" in message and "DISCORD_TOKEN" in message


def test_a_half_configured_twitch_names_what_is_missing(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("TWITCH_CLIENT_ID", "cid")
    env.setenv("TWITCH_BOT_ID", "2914196")
    with caplog.at_level(logging.WARNING):
        assert configured_adapters({"twitch"}) == []
    assert "TWITCH_CLIENT_SECRET, TWITCH_CHANNELS" in caplog.text


async def test_runbot_platform_web_starts_no_adapter(env: pytest.MonkeyPatch) -> None:
    configure_both(env)
    assert start_adapters({"web"}) == []


@pytest.mark.django_db(transaction=True)
async def test_runbot_platform_discord_starts_only_discord(env: pytest.MonkeyPatch) -> None:
    configure_both(env)
    env.setenv("DISCORD_API_URL", "http://127.0.0.1:9/api/v10")  # nothing listens: it only has to start
    tasks = start_adapters({"discord", "web"})
    try:
        assert sorted(t.get_name() for t in tasks) == ["adapter-discord", "channel-settings"]
    finally:
        await cancel(tasks)
