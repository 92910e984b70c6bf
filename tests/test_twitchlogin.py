"""`manage.py twitchlogin`: the device-code flow against a fake Twitch on 127.0.0.1."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from chatbridge.models import ChannelSettings, TwitchApp, TwitchToken
from tests.fakes import fake_twitch as tw
from tests.fakes.fake_twitch import FakeTwitch, serving_in_thread

pytestmark = pytest.mark.django_db

NEW_BOT = ("88800001", "mon_bot")
BROADCASTER = ("88800002", "la_streameuse")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwitch]:
    with serving_in_thread() as twitch:
        for name in ("TWITCH_CLIENT_ID", "TWITCH_CLIENT_SECRET", "TWITCH_BOT_ID", "TWITCH_CHANNELS"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("TWITCH_AUTH_URL", f"{twitch.base}/")
        monkeypatch.setenv("TWITCH_API_URL", f"{twitch.base}/helix/")
        # Twitch says 5 s; the loop waits what it is told.
        twitch.device_interval = 0.01
        # A public client: the device flow needs only the client id.
        TwitchApp.objects.create(pk=1, client_id=tw.CLIENT_ID)
        yield twitch


def twitchlogin(*args: str) -> str:
    out = io.StringIO()
    call_command("twitchlogin", *args, stdout=out)
    return out.getvalue()


def test_it_connects_the_bot_after_the_code_is_entered(fake: FakeTwitch) -> None:
    fake.approve_device(NEW_BOT, after_polls=2)

    output = twitchlogin()

    assert "https://www.twitch.tv/activate" in output and "FAKE" in output
    assert "connected as mon_bot" in output
    assert fake.device_polls == 3  # two authorization_pending, then the tokens
    token = TwitchToken.objects.get()
    assert (token.user_id, token.login) == NEW_BOT
    assert token.token in fake.user_tokens
    assert token.token not in output
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM chatbridge_twitchtoken")
        assert token.token not in cursor.fetchone()[0]
    app = TwitchApp.load()
    assert (app.bot_id, app.bot_login) == NEW_BOT


def test_an_expired_code_is_a_clean_error(fake: FakeTwitch) -> None:
    fake.expire_device(after_polls=1)

    with pytest.raises(CommandError, match="expired"):
        twitchlogin()

    assert not TwitchToken.objects.exists()
    assert TwitchApp.load().bot_id == ""


def test_a_missing_scope_stores_nothing(fake: FakeTwitch) -> None:
    fake.approve_device(NEW_BOT, ["user:read:chat"])

    with pytest.raises(CommandError, match="user:bot"):
        twitchlogin()

    assert not TwitchToken.objects.exists()


def test_a_broadcaster_authorizes_their_channel(fake: FakeTwitch) -> None:
    fake.approve_device(BROADCASTER, after_polls=1)

    output = twitchlogin("--broadcaster")

    assert "la_streameuse" in output
    row = ChannelSettings.objects.get(platform="twitch")
    assert (row.broadcaster_id, row.channel, row.bot_authorized, row.joined) == (*BROADCASTER, True, True)
    assert not TwitchToken.objects.exists()  # only the grant matters
    device_request = [
        r for r in fake.token_requests if r["grant_type"] == "urn:ietf:params:oauth:grant-type:device_code"
    ]
    assert device_request[-1]["scopes"] == "channel:bot"


def test_it_needs_a_client_id(fake: FakeTwitch) -> None:
    TwitchApp.objects.filter(pk=1).update(client_id="")

    with pytest.raises(CommandError, match="TWITCH_CLIENT_ID"):
        twitchlogin()

    assert fake.device_polls == 0


def test_an_unreachable_twitch_is_a_clean_error(fake: FakeTwitch, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWITCH_AUTH_URL", "http://127.0.0.1:9/")

    with pytest.raises(CommandError, match="could not be reached"):
        twitchlogin()
