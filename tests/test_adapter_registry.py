"""Which adapters `runbot` starts: the configured ones (environment or setup pages), limited by
`--platform`."""

from __future__ import annotations

import logging

import pytest

from chatbridge.adapters.registry import (
    configured_adapters,
    not_configured_message,
    read_setup,
)
from chatbridge.adapters.setup_watch import SetupWatch
from chatbridge.adapters.twitch.tokens import store_pair
from chatbridge.bot import cancel, start_adapters
from chatbridge.models import DiscordBot, TwitchApp
from tests.adapter_support import eventually

pytestmark = pytest.mark.django_db(transaction=True)

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


def test_nothing_starts_without_credentials_and_the_message_points_to_the_setup_pages(
    env: pytest.MonkeyPatch,
) -> None:
    assert configured_adapters({"twitch", "discord"}) == []
    message = not_configured_message({"twitch", "discord"}, "http://127.0.0.1:8000/")
    assert "http://127.0.0.1:8000/twitch/connect/" in message
    assert "http://127.0.0.1:8000/discord/connect/" in message
    assert "TWITCH_CLIENT_ID" in message and "DISCORD_TOKEN" in message


def test_what_the_setup_pages_stored_is_enough_and_channels_may_come_later(env: pytest.MonkeyPatch) -> None:
    TwitchApp.objects.create(pk=1, client_id="cid", client_secret="secret-1234", bot_id="2914196")
    DiscordBot.objects.create(pk=1, token="discord-token-1234")

    assert [a.platform for a in configured_adapters({"twitch", "discord"})] == ["twitch", "discord"]


def test_a_half_configured_twitch_names_what_is_missing(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env.setenv("TWITCH_CLIENT_ID", "cid")
    env.setenv("TWITCH_BOT_ID", "2914196")
    with caplog.at_level(logging.WARNING):
        assert configured_adapters({"twitch"}) == []
    assert "TWITCH_CLIENT_SECRET not set" in caplog.text and "/twitch/connect/" in caplog.text


def test_the_setup_changes_with_the_credentials_and_a_new_token_but_holds_no_secret(
    env: pytest.MonkeyPatch,
) -> None:
    TwitchApp.objects.create(pk=1, client_id="cid", client_secret="secret-1234", bot_id="2914196")
    first = read_setup("twitch")
    store_pair("2914196", "token-aaaa-0000", "refresh-aaaa-0000")  # twitchio storing its own
    stored = read_setup("twitch")
    store_pair("2914196", "token-aaaa-1111", "refresh-aaaa-1111", connected=True)  # the setup page
    reconnected = read_setup("twitch")
    TwitchApp.objects.filter(pk=1).update(client_id="another-cid")
    other_app = read_setup("twitch")

    assert first.configured and not first.problem
    assert stored.revision == first.revision  # a refresh or a store by the adapter restarts nothing
    assert reconnected.credentials == first.credentials and reconnected.revision != first.revision
    assert other_app.credentials != first.credentials
    for setup in (first, reconnected, other_app):
        assert "secret-1234" not in repr(setup) and "token-aaaa-1111" not in repr(setup)


async def test_runbot_platform_web_starts_no_adapter(env: pytest.MonkeyPatch) -> None:
    configure_both(env)
    assert start_adapters({"web"}) == []


async def test_runbot_platform_discord_starts_only_discord(env: pytest.MonkeyPatch) -> None:
    configure_both(env)
    env.setenv("DISCORD_API_URL", "http://127.0.0.1:9/api/v10")  # nothing listens: it only has to start
    watch = SetupWatch({"discord", "web"})
    tasks = start_adapters({"discord", "web"}, watch)
    try:
        assert sorted(t.get_name() for t in tasks) == ["adapters", "channel-settings"]
        await eventually(lambda: list(watch.running) == ["discord"], what="the Discord adapter")
    finally:
        await cancel(tasks)


def test_a_mistyped_variable_keeps_that_platform_off_and_names_the_fix(env: pytest.MonkeyPatch) -> None:
    configure_both(env)
    env.setenv("TWITCH_BOT_ID", "serdabot_tv")  # a login where the numeric id goes

    twitch = read_setup("twitch")

    assert not twitch.configured and "TWITCH_BOT_ID" in twitch.problem
    assert read_setup("discord").configured
