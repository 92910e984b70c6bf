"""The Discord setup page against the fake Discord: the token checked and stored encrypted,
the invite link, the Message Content intent, and the channels picked as rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from chatbridge.channel_settings import settings_cache
from chatbridge.models import ChannelSettings, DiscordBot
from chatbridge.setup import discord_api, discord_views
from serdabot.encryption import PREFIX
from tests.fakes import fake_discord as dc
from tests.fakes.fake_discord import FakeDiscord, serving_in_thread

pytestmark = pytest.mark.django_db

URL = "/discord/connect/"
TOKEN_URL = "/discord/token/"
CHANNELS_URL = "/discord/channels/"
SERVER = "Le serveur du stream"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDiscord]:
    with serving_in_thread() as fake:
        env = fake.env()
        monkeypatch.delenv("DISCORD_TOKEN", raising=False)
        monkeypatch.delenv("DISCORD_CHANNELS", raising=False)
        monkeypatch.setenv("DISCORD_API_URL", env["DISCORD_API_URL"])
        yield fake


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("streamer", password="x", is_staff=True))
    return client


def save_token(staff: Client, token: str = dc.TOKEN) -> Any:
    return staff.post(TOKEN_URL, {"token": token})


def raw_token_column() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM chatbridge_discordbot")
        (value,) = cursor.fetchone()
    return str(value)


def test_it_is_for_staff_only(fake: FakeDiscord) -> None:
    client = Client()
    client.force_login(User.objects.create_user("viewer", password="x"))

    assert client.get(URL).status_code == 302
    assert client.post(TOKEN_URL, {"token": dc.TOKEN}).status_code == 302
    assert not DiscordBot.objects.exists()


def test_it_renders_in_french_by_default(fake: FakeDiscord, staff: Client, settings: Any) -> None:
    settings.LANGUAGE_CODE = "fr"  # the project's default (the tests' fixture picks English)
    response = staff.get(URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert '<html lang="fr">' in page
    assert "Connecter Discord" in page
    assert "Le jeton du bot" in page


def test_a_token_is_checked_and_stored_encrypted(fake: FakeDiscord, staff: Client) -> None:
    response = save_token(staff)

    assert response.status_code == 302
    bot = DiscordBot.objects.get()
    assert bot.token == dc.TOKEN
    assert (bot.application_id, bot.bot_name, bot.message_content) == (dc.BOT["id"], "serdabot", True)
    raw = raw_token_column()
    assert raw.startswith(PREFIX) and dc.TOKEN not in raw
    assert {"GET /api/v10/users/@me", "GET /api/v10/applications/@me"} <= set(fake.requests)
    page = staff.get(URL).content.decode()
    assert dc.TOKEN not in page
    assert "serdabot" in page


@pytest.mark.parametrize("prefix", ["Bot ", "bot ", "BOT  "])
def test_a_pasted_bot_prefix_is_dropped(fake: FakeDiscord, staff: Client, prefix: str) -> None:
    save_token(staff, f"{prefix}{dc.TOKEN}")

    assert DiscordBot.objects.get().token == dc.TOKEN


def test_a_refused_token_is_not_saved(fake: FakeDiscord, staff: Client) -> None:
    response = save_token(staff, "wrong.discord.token")

    assert response.status_code == 400
    page = response.content.decode()
    assert "Discord refused this token" in page and "was not saved" in page
    assert "wrong.discord.token" not in page
    assert not DiscordBot.objects.filter(token__gt="").exists()
    assert not DiscordBot.objects.exclude(application_id="").exists()


def test_a_malformed_token_is_refused_before_asking_discord(fake: FakeDiscord, staff: Client) -> None:
    response = save_token(staff, "not a token")

    assert response.status_code == 400
    assert "does not look like a bot token" in response.content.decode()
    assert fake.requests == []


def test_an_unreachable_discord_says_so_and_saves_nothing(
    fake: FakeDiscord, staff: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCORD_API_URL", "http://127.0.0.1:9/api/v10")  # nothing listens there
    response = save_token(staff)

    assert response.status_code == 400
    assert "Discord could not be reached" in response.content.decode()
    assert not DiscordBot.objects.filter(token__gt="").exists()


def test_a_token_from_the_environment_is_not_editable(
    fake: FakeDiscord, staff: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", dc.TOKEN)
    page = staff.get(URL).content.decode()

    assert "from the environment, DISCORD_TOKEN" in page
    assert 'name="token"' not in page
    assert dc.TOKEN not in page
    # Checked with Discord all the same: the invite link needs the application's id.
    assert f"client_id={dc.BOT['id']}" in page
    save_token(staff, "another.discord.token")
    assert not DiscordBot.objects.filter(token__gt="").exists()


def test_the_invite_link_asks_for_exactly_the_needed_permissions(fake: FakeDiscord, staff: Client) -> None:
    save_token(staff)
    response = staff.get(URL)

    invite = response.context["invite_url"]
    parts = urlsplit(invite)
    query = parse_qs(parts.query)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "discord.com", "/oauth2/authorize")
    assert query["client_id"] == [dc.BOT["id"]]
    assert query["scope"] == ["bot applications.commands"]
    # Discord's bits, as its documentation numbers them.
    view_channel, send_messages, read_message_history, send_in_threads = 1 << 10, 1 << 11, 1 << 16, 1 << 38
    assert (
        int(query["permissions"][0]) == view_channel | send_messages | read_message_history | send_in_threads
    )
    page = response.content.decode()
    assert "Read Message History" in page and "Discord refuses a reply without it" in page


@pytest.mark.parametrize(
    ("flags", "on"),
    [
        (dc.GATEWAY_MESSAGE_CONTENT, True),
        (dc.GATEWAY_MESSAGE_CONTENT_LIMITED, True),
        (0, False),
    ],
)
def test_the_message_content_intent_is_read_from_the_flags(
    fake: FakeDiscord, staff: Client, flags: int, on: bool
) -> None:
    fake.application_flags = flags
    save_token(staff)
    page = staff.get(URL).content.decode()

    assert DiscordBot.objects.get().message_content is on
    assert ("!ask in a plain message works" in page) is on
    assert ("reads only the messages that mention it" in page) is not on
    # Checked off, the bot stops asking for it (Discord would refuse the connection): no warning.
    assert 'id="intent-asked"' not in page


def test_checking_again_sees_the_intent_switched_on(fake: FakeDiscord, staff: Client) -> None:
    fake.application_flags = 0
    save_token(staff)
    fake.application_flags = dc.GATEWAY_MESSAGE_CONTENT
    staff.post("/discord/check/")

    assert DiscordBot.objects.get().message_content is True


def test_the_servers_channels_are_listed_to_pick(fake: FakeDiscord, staff: Client) -> None:
    save_token(staff)
    page = staff.get(URL).content.decode()

    assert SERVER in page
    for channel in (dc.CHANNEL, dc.OTHER_CHANNEL, dc.VOICE):
        assert f'id="channel-{channel}"' in page
    assert f'id="channel-{dc.CATEGORY}"' not in page  # a category holds no messages


def test_a_server_refusing_its_channels_is_noted_and_the_others_still_listed(
    fake: FakeDiscord, staff: Client
) -> None:
    # The bot was kicked from a server between listing the servers and reading its channels.
    kicked = {"id": "3100", "name": "Serveur quitté", "channels": []}
    fake.guilds.append(kicked)
    fake.refuse_channels_of.add("3100")
    save_token(staff)
    page = staff.get(URL).content.decode()

    assert 'id="problem"' not in page
    assert SERVER in page and f'id="channel-{dc.CHANNEL}"' in page
    assert "Serveur quitté" in page
    assert page.count("Channels not readable: the bot may no longer be in this server.") == 1


def test_a_capped_server_list_says_so(
    fake: FakeDiscord, staff: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discord_api, "MAX_GUILDS", 2)
    fake.guilds.append({"id": "3100", "name": "Le deuxième serveur", "channels": []})
    save_token(staff)
    assert 'id="guilds-capped"' not in staff.get(URL).content.decode()  # exactly at the cap

    fake.guilds.append({"id": "3200", "name": "Le troisième serveur", "channels": []})
    page = staff.get(URL).content.decode()

    assert "Le deuxième serveur" in page and "Le troisième serveur" not in page
    assert "The bot is in more than 2 servers: only the first 2 are listed." in page


def pick(staff: Client, picked: list[str], *, only_listed: bool = True) -> Any:
    shown = {dc.CHANNEL: "general", dc.OTHER_CHANNEL: "off-topic"}
    data: dict[str, Any] = {
        "shown": [f"{dc.GUILD}:{c}" for c in shown],
        "channel": picked,
        **{f"label-{c}": f"{SERVER} #{name}" for c, name in shown.items()},
    }
    if only_listed:
        data["only_listed"] = "on"
    return staff.post(CHANNELS_URL, data)


def rows() -> dict[str, tuple[bool, str, str]]:
    return {
        r.channel: (r.joined, r.label, r.guild_id) for r in ChannelSettings.objects.filter(platform="discord")
    }


def test_a_picked_channel_becomes_a_joined_row(fake: FakeDiscord, staff: Client) -> None:
    response = pick(staff, [dc.CHANNEL])

    assert response.status_code == 302
    assert rows() == {dc.CHANNEL: (True, f"{SERVER} #general", dc.GUILD)}  # no row for the unpicked
    assert DiscordBot.objects.get().only_listed is True


def test_a_pick_wins_over_the_adapter_making_the_row_meanwhile(
    fake: FakeDiscord, staff: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The running adapter sees a message in the channel between the page reading the rows and
    # inserting the new ones: its row (not joined) is there first, and the insert skips it.
    insert = ChannelSettings.objects.bulk_create

    def adapter_first(objs: Any, **kwargs: Any) -> Any:
        settings_cache.remember("discord", dc.CHANNEL, f"{SERVER} #general")
        return insert(objs, **kwargs)

    monkeypatch.setattr(ChannelSettings.objects, "bulk_create", adapter_first)
    pick(staff, [dc.CHANNEL])

    assert rows() == {dc.CHANNEL: (True, f"{SERVER} #general", dc.GUILD)}


def test_an_unpicked_channel_keeps_its_row_and_settings(fake: FakeDiscord, staff: Client) -> None:
    ChannelSettings.objects.create(platform="discord", channel=dc.OTHER_CHANNEL, user_cooldown=99)
    pick(staff, [dc.CHANNEL, dc.OTHER_CHANNEL])
    pick(staff, [dc.CHANNEL])

    assert rows() == {
        dc.CHANNEL: (True, f"{SERVER} #general", dc.GUILD),
        dc.OTHER_CHANNEL: (False, f"{SERVER} #off-topic", dc.GUILD),
    }
    assert ChannelSettings.objects.get(channel=dc.OTHER_CHANNEL).user_cooldown == 99


def test_the_switch_off_answers_everywhere_and_keeps_the_picks(fake: FakeDiscord, staff: Client) -> None:
    pick(staff, [dc.CHANNEL])
    pick(staff, [dc.CHANNEL], only_listed=False)

    assert DiscordBot.objects.get().only_listed is False
    assert rows()[dc.CHANNEL][0] is True


def test_picking_nothing_warns_that_the_bot_answers_nowhere(fake: FakeDiscord, staff: Client) -> None:
    response = staff.get(pick(staff, [])["Location"])

    assert "the bot answers nowhere on Discord" in response.content.decode()


def test_picking_reloads_the_settings_snapshot_and_tells_the_bot(
    fake: FakeDiscord,
    staff: Client,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    notices: list[str] = []
    monkeypatch.setattr(discord_views, "notify_changed", notices.append)
    settings_cache.clear()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            pick(staff, [dc.OTHER_CHANNEL])
        joined = settings_cache.joined("discord")
    finally:
        settings_cache.clear()

    assert joined == {dc.OTHER_CHANNEL: ""}
    assert notices == ["channels", "discord-setup"]


def test_a_known_row_of_a_channel_discord_no_longer_lists_stays_switchable(
    fake: FakeDiscord, staff: Client
) -> None:
    ChannelSettings.objects.create(platform="discord", channel="4999", label="Ancien #salon", joined=True)
    save_token(staff)
    page = staff.get(URL).content.decode()

    assert 'id="channel-4999"' in page and "Ancien #salon" in page
    staff.post(CHANNELS_URL, {"shown": [":4999"], "only_listed": "on"})
    assert ChannelSettings.objects.get(channel="4999").joined is False


def test_a_token_discord_no_longer_takes_is_said_on_the_page(fake: FakeDiscord, staff: Client) -> None:
    save_token(staff)
    fake.token = "reset.in.the-portal"  # the streamer reset the token: the stored one is refused
    page = staff.get(URL).content.decode()

    assert 'id="problem"' in page and "Discord refused this token" in page


def test_a_token_stored_with_another_key_asks_for_it_again(fake: FakeDiscord, staff: Client) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO chatbridge_discordbot (id, token, application_id, bot_name, message_content, "
            "only_listed, updated) VALUES (1, %s, '', '', false, false, CURRENT_TIMESTAMP)",
            [PREFIX + "gAAAAABnot-this-key"],
        )
    page = staff.get(URL).content.decode()

    assert "stored with another encryption key: enter it again" in page
    assert fake.requests == []  # no token to ask Discord with


def test_the_token_is_never_logged(
    fake: FakeDiscord, staff: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    save_token(staff)
    save_token(staff, "wrong.discord.token")
    staff.get(URL)

    assert "Discord: bot token saved" in caplog.text
    assert dc.TOKEN not in caplog.text and "wrong.discord.token" not in caplog.text
