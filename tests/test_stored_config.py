"""Platform settings: the environment wins, the setup pages' rows fill the rest, and the
environment's channel lists seed rows once."""

from __future__ import annotations

import pytest

from chatbridge import stored_config
from chatbridge.models import ChannelSettings, DiscordBot, TwitchApp
from serdabot import encryption

pytestmark = pytest.mark.django_db

TWITCH_VARIABLES = ("TWITCH_CLIENT_ID", "TWITCH_CLIENT_SECRET", "TWITCH_BOT_ID", "TWITCH_CHANNELS")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*TWITCH_VARIABLES, "DISCORD_TOKEN", "DISCORD_CHANNELS", "DISCORD_MESSAGE_CONTENT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def channels(platform: str = "twitch") -> list[str]:
    return sorted(ChannelSettings.objects.filter(platform=platform).values_list("channel", flat=True))


def test_twitch_channels_seed_rows_once_and_a_row_deleted_later_stays_deleted(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("TWITCH_CHANNELS", "#Streamer, otherchan")
    assert stored_config.twitch_config().channels == ("streamer", "otherchan")
    ChannelSettings.objects.filter(channel="otherchan").delete()
    # A restart, even with a longer list: the rows are the streamer's now.
    env.setenv("TWITCH_CHANNELS", "streamer, otherchan, third")

    assert stored_config.twitch_config().channels == ("streamer",)
    assert channels() == ["streamer"]


def test_a_paused_row_is_no_channel_to_read(env: pytest.MonkeyPatch) -> None:
    ChannelSettings.objects.create(platform="twitch", channel="streamer")
    ChannelSettings.objects.create(platform="twitch", channel="paused", joined=False)

    assert stored_config.twitch_config().channels == ("streamer",)


def test_the_environment_wins_and_the_setup_page_fills_the_rest(env: pytest.MonkeyPatch) -> None:
    TwitchApp.objects.create(pk=1, client_id="page-cid", client_secret="page-secret-1234", bot_id="111")
    env.setenv("TWITCH_BOT_ID", "222")

    config = stored_config.twitch_config()

    assert (config.client_id, config.client_secret, config.bot_id) == ("page-cid", "page-secret-1234", "222")
    assert config.configured and stored_config.twitch_problem(config) == ""


def test_nothing_set_is_no_problem_but_half_set_names_what_is_missing(env: pytest.MonkeyPatch) -> None:
    assert stored_config.twitch_problem(stored_config.twitch_config()) == ""
    TwitchApp.objects.create(pk=1, client_id="page-cid", bot_id="111")

    problem = stored_config.twitch_problem(stored_config.twitch_config())

    assert "TWITCH_CLIENT_SECRET not set" in problem and "/twitch/connect/" in problem


def test_a_secret_stored_with_another_key_is_not_configured_and_says_why(
    env: pytest.MonkeyPatch,
) -> None:
    env.delenv("SERDABOT_ENCRYPTION_KEY", raising=False)
    encryption.reset_keys()
    TwitchApp.objects.create(pk=1, client_id="page-cid", client_secret="page-secret-1234", bot_id="111")
    DiscordBot.objects.create(pk=1, token="discord-token-1234")
    env.setenv("SERDABOT_ENCRYPTION_KEY", "another passphrase, long enough to be a key")
    encryption.reset_keys()
    try:
        twitch, discord = stored_config.twitch_config(), stored_config.discord_config()
        twitch_problem, discord_problem = (
            stored_config.twitch_problem(twitch),
            stored_config.discord_problem(discord),
        )
    finally:
        env.delenv("SERDABOT_ENCRYPTION_KEY")
        encryption.reset_keys()

    assert not twitch.configured and not discord.configured
    assert "cannot be decrypted" in twitch_problem and "client secret" in twitch_problem
    assert "cannot be decrypted" in discord_problem and "Discord token" in discord_problem
    assert "page-secret-1234" not in twitch_problem


def test_discord_channels_seed_rows_once_and_mean_only_these(env: pytest.MonkeyPatch) -> None:
    env.setenv("DISCORD_CHANNELS", "123,456")
    env.setenv("DISCORD_TOKEN", "discord-token-1234")
    first = stored_config.discord_config()
    ChannelSettings.objects.filter(channel="456").delete()

    again = stored_config.discord_config()

    assert first.only_listed and first.channels == ("123", "456")
    assert again.only_listed and again.channels == ("123",)


def test_broadcaster_ids_fill_only_rows_without_one() -> None:
    ChannelSettings.objects.create(platform="twitch", channel="streamer")
    ChannelSettings.objects.create(platform="twitch", channel="renamed", broadcaster_id="999")

    filled = stored_config.fill_broadcaster_ids({"streamer": "1971641", "renamed": "1971642"})

    assert filled == 1
    ids = dict(ChannelSettings.objects.values_list("channel", "broadcaster_id"))
    assert ids == {"streamer": "1971641", "renamed": "999"}


def test_discord_asks_for_message_content_only_when_the_checked_application_has_it(
    env: pytest.MonkeyPatch,
) -> None:
    assert stored_config.discord_config().message_content  # nothing checked yet: the default
    DiscordBot.objects.create(pk=1, token="discord-token-1a2b", application_id="1234", message_content=False)
    # Asking for an intent Discord has not granted gets the connection refused (4014).
    assert not stored_config.discord_config().message_content
    DiscordBot.objects.filter(pk=1).update(message_content=True)
    assert stored_config.discord_config().message_content
    DiscordBot.objects.filter(pk=1).update(message_content=False)
    env.setenv("DISCORD_MESSAGE_CONTENT", "true")  # the operator's word wins
    assert stored_config.discord_config().message_content


def test_the_first_seeding_pauses_old_rows_the_list_no_longer_names(env: pytest.MonkeyPatch) -> None:
    # An upgrade: an older version kept a row for every channel it was ever told to read.
    ChannelSettings.objects.create(platform="twitch", channel="streamer")
    ChannelSettings.objects.create(platform="twitch", channel="dropped_months_ago")
    env.setenv("TWITCH_CHANNELS", "streamer")

    assert stored_config.twitch_config().channels == ("streamer",)
    assert not ChannelSettings.objects.get(channel="dropped_months_ago").joined  # kept, paused


def test_seeding_twice_at_once_is_no_error(env: pytest.MonkeyPatch) -> None:
    env.setenv("TWITCH_CHANNELS", "streamer")
    assert stored_config.seed_channels("TWITCH_CHANNELS", "twitch", ("streamer",))
    assert not stored_config.seed_channels("TWITCH_CHANNELS", "twitch", ("streamer", "other"))
    assert channels() == ["streamer"]
