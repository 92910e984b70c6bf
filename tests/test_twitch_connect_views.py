"""The "Connect with Twitch" pages, with the Django test client against a fake Twitch on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse

from chatbridge.models import ChannelSettings, TwitchApp, TwitchToken
from chatbridge.setup.twitch_accounts import BOT_SCOPES
from tests.fakes import fake_twitch as tw
from tests.fakes.fake_twitch import FakeTwitch, serving_in_thread

pytestmark = pytest.mark.django_db

NEW_BOT = ("88800001", "mon_bot")
BROADCASTER = ("88800002", "la_streameuse")
ENV = (
    "TWITCH_CLIENT_ID",
    "TWITCH_CLIENT_SECRET",
    "TWITCH_BOT_ID",
    "TWITCH_CHANNELS",
    "TWITCH_BOT_TOKEN",
    "TWITCH_REFRESH_TOKEN",
)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwitch]:
    with serving_in_thread() as twitch:
        for name in ENV:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("TWITCH_AUTH_URL", f"{twitch.base}/")
        monkeypatch.setenv("TWITCH_API_URL", f"{twitch.base}/helix/")
        yield twitch


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("staff", password="x", is_staff=True))
    return client


@pytest.fixture
def app(fake: FakeTwitch, staff: Client) -> None:
    """The application's credentials, entered on the page."""
    response = staff.post(
        reverse("twitch-app"),
        {"client_id": tw.CLIENT_ID, "client_secret": "fakeclientsecret3d9f"},
        follow=True,
    )
    assert messages_of(response) == [("success", "The Twitch application is saved.")]
    fake.client_secret = "fakeclientsecret3d9f"


def start(client: Client, purpose: str) -> dict[str, list[str]]:
    """Click a connect button: the query of the Twitch authorize URL it redirects to."""
    response = client.post(reverse("twitch-authorize", args=[purpose]))
    assert response.status_code == 302
    return parse_qs(urlsplit(response["Location"]).query)


def back_from_twitch(client: Client, **params: str) -> Any:
    return client.get(reverse("twitch-callback"), params)


def messages_of(response: Any) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def raw_column(table: str, column: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table}")
        return [row[0] for row in cursor.fetchall()]


def test_the_page_shows_the_redirect_url_and_never_the_secret(staff: Client, app: None) -> None:
    response = staff.get(reverse("twitch-connect"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "http://testserver/twitch/callback/" in page
    assert tw.CLIENT_ID in page
    assert "fakeclientsecret3d9f" not in page
    assert response.context["secret"] == "set"
    assert "fakeclientsecret3d9f" not in raw_column("chatbridge_twitchapp", "client_secret")[0]


def test_an_empty_secret_field_keeps_the_stored_secret(staff: Client, app: None) -> None:
    staff.post(reverse("twitch-app"), {"client_id": tw.CLIENT_ID, "client_secret": ""})

    assert TwitchApp.load().client_secret == "fakeclientsecret3d9f"


def test_a_malformed_client_id_is_refused(staff: Client, fake: FakeTwitch) -> None:
    response = staff.post(reverse("twitch-app"), {"client_id": "not an id!", "client_secret": ""})

    assert response.status_code == 400
    assert TwitchApp.load().client_id == ""


def test_the_environment_wins_and_is_not_editable(
    staff: Client, fake: FakeTwitch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWITCH_CLIENT_ID", "fromtheenvironment1")
    monkeypatch.setenv("TWITCH_CLIENT_SECRET", "secretfromtheenvironment")

    page = staff.get(reverse("twitch-connect"))
    staff.post(reverse("twitch-app"), {"client_id": "typedonthepage1", "client_secret": "typedsecret12345"})

    assert 'name="client_id"' not in page.content.decode()
    assert "secretfromtheenvironment" not in page.content.decode()
    assert page.context["secret"] == "environment"
    assert (TwitchApp.load().client_id, TwitchApp.load().client_secret) == ("", "")


def test_connecting_the_bot_sends_the_browser_to_twitch_with_the_bot_scopes_and_a_state(
    staff: Client, app: None, fake: FakeTwitch
) -> None:
    response = staff.post(reverse("twitch-authorize", args=["bot"]))

    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{fake.base}/oauth2/authorize"
    query = parse_qs(location.query)
    assert query["scope"] == ["user:read:chat user:write:chat user:bot"]
    assert query["client_id"] == [tw.CLIENT_ID]
    assert query["redirect_uri"] == ["http://testserver/twitch/callback/"]
    assert query["response_type"] == ["code"] and query["force_verify"] == ["true"]
    assert len(query["state"][0]) >= 32
    assert start(staff, "bot")["state"] != query["state"]  # a new one each time


def test_authorizing_a_channel_asks_only_for_channel_bot(staff: Client, app: None) -> None:
    assert start(staff, "channel")["scope"] == ["channel:bot"]


def test_no_flow_starts_without_the_application(staff: Client, fake: FakeTwitch) -> None:
    response = staff.post(reverse("twitch-authorize", args=["bot"]))

    assert response["Location"] == reverse("twitch-connect")


def test_the_callback_stores_the_bot_token_encrypted_for_the_account_the_api_names(
    staff: Client, app: None, fake: FakeTwitch
) -> None:
    state = start(staff, "bot")["state"][0]
    fake.grant_code("code-bot", NEW_BOT, list(BOT_SCOPES))

    response = back_from_twitch(staff, code="code-bot", state=state)

    assert response.status_code == 302 and response["Location"] == reverse("twitch-connect")
    token = TwitchToken.objects.get()
    assert (token.user_id, token.login) == NEW_BOT
    assert token.token in fake.user_tokens and token.refresh in fake.refresh_tokens
    assert token.scopes == "user:read:chat user:write:chat user:bot"
    stored = (
        raw_column("chatbridge_twitchtoken", "token")[0] + raw_column("chatbridge_twitchtoken", "refresh")[0]
    )
    assert token.token not in stored and token.refresh not in stored
    app_row = TwitchApp.load()
    assert (app_row.bot_id, app_row.bot_login) == NEW_BOT
    assert fake.token_requests[-1]["redirect_uri"] == "http://testserver/twitch/callback/"
    page = staff.get(reverse("twitch-connect"))
    assert page.context["bot_state"] == "connected"
    assert ("success", "Bot account connected: mon_bot.") in messages_of(page)


def test_a_forged_state_is_refused(staff: Client, app: None, fake: FakeTwitch) -> None:
    start(staff, "bot")
    fake.grant_code("code-bot", NEW_BOT, list(BOT_SCOPES))

    response = back_from_twitch(staff, code="code-bot", state="forged-by-someone")

    assert response.status_code == 400
    assert not any(r["grant_type"] == "authorization_code" for r in fake.token_requests)
    assert not TwitchToken.objects.exists()


def test_a_replayed_state_is_refused(staff: Client, app: None, fake: FakeTwitch) -> None:
    state = start(staff, "bot")["state"][0]
    fake.grant_code("code-bot", NEW_BOT, list(BOT_SCOPES))
    assert back_from_twitch(staff, code="code-bot", state=state).status_code == 302
    fake.grant_code("code-again", BROADCASTER, list(BOT_SCOPES))

    response = back_from_twitch(staff, code="code-again", state=state)

    assert response.status_code == 400
    assert list(TwitchToken.objects.values_list("user_id", flat=True)) == [NEW_BOT[0]]


def test_a_state_from_another_session_is_refused(staff: Client, app: None, fake: FakeTwitch) -> None:
    state = start(staff, "bot")["state"][0]
    other = Client()
    other.force_login(User.objects.create_user("other", password="x", is_staff=True))

    assert back_from_twitch(other, code="code-bot", state=state).status_code == 400


def test_a_declined_authorization_is_told(staff: Client, app: None, fake: FakeTwitch) -> None:
    state = start(staff, "bot")["state"][0]

    response = staff.get(
        reverse("twitch-callback"),
        {"error": "access_denied", "error_description": "The user denied you access", "state": state},
        follow=True,
    )

    assert response.status_code == 200
    assert messages_of(response) == [("warning", "Authorization was declined on Twitch: nothing changed.")]
    assert not TwitchToken.objects.exists()


def test_a_token_missing_a_scope_is_refused(staff: Client, app: None, fake: FakeTwitch) -> None:
    state = start(staff, "bot")["state"][0]
    fake.grant_code("code-bot", NEW_BOT, ["user:read:chat"])

    response = staff.get(reverse("twitch-callback"), {"code": "code-bot", "state": state}, follow=True)

    ((level, text),) = messages_of(response)
    assert level == "error" and "user:write:chat" in text and "user:bot" in text
    assert not TwitchToken.objects.exists()
    assert TwitchApp.load().bot_id == ""


def test_a_twitch_refusal_is_a_message_not_a_500(staff: Client, app: None, fake: FakeTwitch) -> None:
    state = start(staff, "bot")["state"][0]

    response = staff.get(reverse("twitch-callback"), {"code": "never-issued", "state": state}, follow=True)

    ((level, text),) = messages_of(response)
    assert level == "error" and "400" in text and "fakeclientsecret3d9f" not in text
    assert not TwitchToken.objects.exists()


def test_a_broadcaster_authorizing_creates_their_channel_with_the_id_from_the_api(
    staff: Client, app: None, fake: FakeTwitch
) -> None:
    state = start(staff, "channel")["state"][0]
    fake.grant_code("code-channel", BROADCASTER, ["channel:bot"])

    response = back_from_twitch(staff, code="code-channel", state=state)

    assert response.status_code == 302
    row = ChannelSettings.objects.get(platform="twitch")
    assert (row.broadcaster_id, row.channel) == BROADCASTER
    assert row.bot_authorized and row.joined
    # The broadcaster's token is not kept, and the bot account is untouched.
    assert not TwitchToken.objects.exists()
    assert TwitchApp.load().bot_id == ""


def test_a_paused_channel_authorized_again_is_joined_again(
    staff: Client, app: None, fake: FakeTwitch
) -> None:
    ChannelSettings.objects.create(platform="twitch", channel=BROADCASTER[1], joined=False)
    state = start(staff, "channel")["state"][0]
    fake.grant_code("code-channel", BROADCASTER, ["channel:bot"])

    back_from_twitch(staff, code="code-channel", state=state)

    row = ChannelSettings.objects.get(platform="twitch")
    assert (row.broadcaster_id, row.joined, row.bot_authorized) == (BROADCASTER[0], True, True)


def test_a_channel_is_added_by_login_with_its_id_from_the_api(staff: Client, app: None) -> None:
    response = staff.post(reverse("twitch-channel-add"), {"login": "https://www.twitch.tv/Streamer"})

    assert response.status_code == 302
    row = ChannelSettings.objects.get(platform="twitch")
    assert (row.broadcaster_id, row.channel, row.joined, row.bot_authorized) == (*tw.STREAMER, True, False)
    page = staff.get(reverse("twitch-connect")).content.decode()
    assert 'id="channel-streamer"' in page


def test_an_unknown_login_is_an_error_on_the_page(staff: Client, app: None) -> None:
    response = staff.post(reverse("twitch-channel-add"), {"login": "nobody_here"})

    assert response.status_code == 400
    assert "No Twitch account is called nobody_here." in response.content.decode()
    assert not ChannelSettings.objects.exists()


def test_a_channel_cannot_be_looked_up_without_the_application(staff: Client, fake: FakeTwitch) -> None:
    response = staff.post(reverse("twitch-channel-add"), {"login": "streamer"})

    assert response.status_code == 400
    assert not ChannelSettings.objects.exists()


def test_a_channel_is_paused_resumed_and_removed(staff: Client, fake: FakeTwitch) -> None:
    row = ChannelSettings.objects.create(platform="twitch", channel="streamer", broadcaster_id=tw.STREAMER[0])

    staff.post(reverse("twitch-channel-joined", args=[row.pk]), {"joined": "0"})
    assert ChannelSettings.objects.get(pk=row.pk).joined is False
    staff.post(reverse("twitch-channel-joined", args=[row.pk]), {"joined": "1"})
    assert ChannelSettings.objects.get(pk=row.pk).joined is True
    staff.post(reverse("twitch-channel-remove", args=[row.pk]))
    assert not ChannelSettings.objects.exists()


def test_a_discord_row_is_not_touched_by_the_twitch_forms(staff: Client, fake: FakeTwitch) -> None:
    row = ChannelSettings.objects.create(platform="discord", channel="123456")

    assert staff.post(reverse("twitch-channel-remove", args=[row.pk])).status_code == 404
    assert ChannelSettings.objects.filter(pk=row.pk).exists()


def test_a_refused_token_shows_reconnect(staff: Client, app: None) -> None:
    TwitchApp.objects.filter(pk=1).update(bot_id=NEW_BOT[0], bot_login=NEW_BOT[1])
    TwitchToken.objects.create(user_id=NEW_BOT[0], login=NEW_BOT[1], token="t0ken", refresh="r3fresh")
    assert staff.get(reverse("twitch-connect")).context["bot_state"] == "connected"

    TwitchToken.objects.update(needs_reconnect=True)

    assert staff.get(reverse("twitch-connect")).context["bot_state"] == "reconnect"


def test_a_token_stored_with_another_key_shows_reconnect(staff: Client, app: None) -> None:
    TwitchApp.objects.filter(pk=1).update(bot_id=NEW_BOT[0], bot_login=NEW_BOT[1])
    TwitchToken.objects.create(user_id=NEW_BOT[0], login=NEW_BOT[1], token="t0ken", refresh="r3fresh")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE chatbridge_twitchtoken SET token = %s", ["fernet:gAAAAABnot-our-key"])

    assert staff.get(reverse("twitch-connect")).context["bot_state"] == "reconnect"


def test_the_page_says_not_connected_on_a_fresh_install(staff: Client, fake: FakeTwitch) -> None:
    response = staff.get(reverse("twitch-connect"))

    assert response.context["bot_state"] == "not_connected"
    assert response.context["secret"] == "not_set"
    assert 'id="connect-bot"' not in response.content.decode()  # the application comes first


@pytest.mark.parametrize(
    ("method", "name", "args"),
    [
        ("get", "twitch-connect", []),
        ("get", "twitch-callback", []),
        ("post", "twitch-app", []),
        ("post", "twitch-authorize", ["bot"]),
        ("post", "twitch-channel-add", []),
        ("post", "twitch-channel-joined", [1]),
        ("post", "twitch-channel-remove", [1]),
    ],
)
def test_a_visitor_who_is_not_staff_is_sent_to_the_login_page(
    method: str, name: str, args: list[Any]
) -> None:
    client = Client()
    client.force_login(User.objects.create_user("viewer", password="x"))

    response = getattr(client, method)(reverse(name, args=args))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_a_secret_stored_with_another_key_is_asked_for_again(staff: Client, app: None) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE chatbridge_twitchapp SET client_secret = %s", ["fernet:gAAAAABnot-our-key"])

    response = staff.get(reverse("twitch-connect"))

    assert response.context["secret"] == "unreadable"
    assert response.context["can_authorize"] is False
    assert 'name="client_secret"' in response.content.decode()


@pytest.mark.parametrize(
    ("host", "warned"),
    [
        ("127.0.0.1:8000", "http://localhost:8000/twitch/connect/"),
        ("localhost:8000", ""),
        ("bot.example", ""),
    ],
)
def test_an_http_page_away_from_localhost_says_where_twitch_accepts_it(
    fake: FakeTwitch, staff: Client, settings: Any, host: str, warned: str
) -> None:
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "bot.example"]
    secure = host == "bot.example"
    response = staff.get(reverse("twitch-connect"), HTTP_HOST=host, secure=secure)
    assert response.context["redirect_warning"] == warned
    assert ('id="redirect-warning"' in response.content.decode()) is bool(warned)
