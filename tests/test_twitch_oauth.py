"""chatbridge.setup.twitch_oauth: Twitch's OAuth endpoints, called over real HTTP on a fake Twitch."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from chatbridge.config import TwitchConfig
from chatbridge.setup import twitch_oauth
from chatbridge.setup.twitch_accounts import BOT_SCOPES, CHANNEL_SCOPES
from chatbridge.setup.twitch_oauth import DeviceCodeExpired, TwitchError, TwitchUnreachable
from tests.fakes import fake_twitch as tw
from tests.fakes.fake_twitch import FakeTwitch, serving_in_thread

NEW_BOT = ("88800001", "mon_bot")
REDIRECT = "http://127.0.0.1:8000/twitch/callback/"


@pytest.fixture
def fake() -> Iterator[FakeTwitch]:
    with serving_in_thread() as twitch:
        yield twitch


@pytest.fixture
def config(fake: FakeTwitch) -> TwitchConfig:
    return fake.config()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_it_builds_the_authorize_url() -> None:
    config = TwitchConfig(client_id="abc123", auth_url="https://id.example/")
    url = twitch_oauth.authorize_url(config, redirect_uri=REDIRECT, scopes=BOT_SCOPES, state="s-1")

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://id.example/oauth2/authorize"
    query = parse_qs(parts.query)
    assert query == {
        "response_type": ["code"],
        "client_id": ["abc123"],
        "redirect_uri": [REDIRECT],
        "scope": ["user:read:chat user:write:chat user:bot"],
        "state": ["s-1"],
        "force_verify": ["true"],
    }


def test_it_exchanges_a_code_for_tokens_of_the_user_the_api_names(
    fake: FakeTwitch, config: TwitchConfig
) -> None:
    fake.grant_code("code-1", NEW_BOT, list(BOT_SCOPES))

    grant = twitch_oauth.exchange_code(config, "code-1", REDIRECT)
    identity = twitch_oauth.validate(config, grant.access_token)

    assert grant.access_token in fake.user_tokens and grant.refresh_token in fake.refresh_tokens
    assert (identity.user_id, identity.login, identity.scopes) == (*NEW_BOT, BOT_SCOPES)
    (request,) = fake.token_requests
    assert request["grant_type"] == "authorization_code"
    assert request["redirect_uri"] == REDIRECT
    assert request["client_secret"] == tw.CLIENT_SECRET
    assert grant.access_token not in repr(grant)


def test_a_used_code_is_refused_without_the_secret_in_the_message(
    fake: FakeTwitch, config: TwitchConfig
) -> None:
    fake.grant_code("code-1", NEW_BOT, list(BOT_SCOPES))
    twitch_oauth.exchange_code(config, "code-1", REDIRECT)

    with pytest.raises(TwitchError) as refused:
        twitch_oauth.exchange_code(config, "code-1", REDIRECT)
    assert "400" in str(refused.value)
    assert tw.CLIENT_SECRET not in str(refused.value) and "code-1" not in str(refused.value)


def test_a_wrong_secret_is_refused(fake: FakeTwitch) -> None:
    fake.grant_code("code-1", NEW_BOT, list(BOT_SCOPES))
    config = fake.config(client_secret="wrongsecret123")

    with pytest.raises(TwitchError) as refused:
        twitch_oauth.exchange_code(config, "code-1", REDIRECT)
    assert "403" in str(refused.value) and "wrongsecret123" not in str(refused.value)


def test_an_unreachable_twitch_is_a_twitch_error() -> None:
    config = TwitchConfig(
        client_id="abc", client_secret="s3cr3t", auth_url=f"http://127.0.0.1:{closed_port()}/"
    )
    with pytest.raises(TwitchUnreachable):
        twitch_oauth.app_token(config)


def test_an_app_token_is_not_taken_for_a_user(config: TwitchConfig) -> None:
    with pytest.raises(TwitchError):
        twitch_oauth.validate(config, twitch_oauth.app_token(config))


def test_it_finds_a_channel_by_login(config: TwitchConfig) -> None:
    token = twitch_oauth.app_token(config)

    assert twitch_oauth.find_user(config, "streamer", token) == tw.STREAMER
    assert twitch_oauth.find_user(config, "nobody_here", token) is None


def test_the_device_flow_polls_through_pending_to_the_tokens(fake: FakeTwitch, config: TwitchConfig) -> None:
    device = twitch_oauth.start_device_flow(config, BOT_SCOPES)
    assert device.verification_uri.startswith("https://www.twitch.tv/activate")
    assert device.interval == 5
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            fake.approve_device(NEW_BOT)  # the user enters the code while the command waits

    grant = twitch_oauth.wait_for_device_token(config, device, BOT_SCOPES, sleep=sleep)

    assert fake.device_polls == 3  # two authorization_pending, then the tokens
    assert slept == [5, 5, 5]
    identity = twitch_oauth.validate(config, grant.access_token)
    assert (identity.user_id, identity.login, identity.scopes) == (*NEW_BOT, BOT_SCOPES)
    assert fake.token_requests[-1]["grant_type"] == "urn:ietf:params:oauth:grant-type:device_code"
    assert "client_secret" not in fake.token_requests[-1]


def test_a_slow_down_lengthens_every_later_wait(fake: FakeTwitch, config: TwitchConfig) -> None:
    fake.approve_device(NEW_BOT, after_polls=2, slow_downs=1)
    device = twitch_oauth.start_device_flow(config, CHANNEL_SCOPES)
    slept: list[float] = []

    twitch_oauth.wait_for_device_token(config, device, CHANNEL_SCOPES, sleep=slept.append)

    assert slept == [5, 10, 10]


@pytest.mark.parametrize("message", ["expired_token", "invalid device code"])
def test_an_expired_device_code_ends_the_wait(fake: FakeTwitch, config: TwitchConfig, message: str) -> None:
    fake.expire_device(after_polls=1, message=message)
    device = twitch_oauth.start_device_flow(config, BOT_SCOPES)

    with pytest.raises(DeviceCodeExpired):
        twitch_oauth.wait_for_device_token(config, device, BOT_SCOPES, sleep=lambda s: None)
    assert fake.device_polls == 2


def test_the_wait_ends_when_the_code_runs_out_even_if_twitch_keeps_saying_pending(
    fake: FakeTwitch, config: TwitchConfig
) -> None:
    fake.device_expires_in = 30
    device = twitch_oauth.start_device_flow(config, BOT_SCOPES)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(DeviceCodeExpired):
        twitch_oauth.wait_for_device_token(config, device, BOT_SCOPES, sleep=sleep, clock=lambda: now[0])
    assert fake.device_polls == 30 // 5


def test_a_refusal_other_than_pending_is_an_error(fake: FakeTwitch, config: TwitchConfig) -> None:
    fake.expire_device(message="access_denied")
    device = twitch_oauth.start_device_flow(config, BOT_SCOPES)

    with pytest.raises(TwitchError) as refused:
        twitch_oauth.wait_for_device_token(config, device, BOT_SCOPES, sleep=lambda s: None)
    assert not isinstance(refused.value, DeviceCodeExpired)
    assert "access_denied" in str(refused.value)
