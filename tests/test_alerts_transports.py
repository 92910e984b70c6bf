"""Transports: Discord's webhook and a generic receiver (a real server on 127.0.0.1), email (locmem)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from llm.alerts.models import Alert, AlertTarget
from llm.alerts.transports import (
    TRANSPORTS,
    DiscordTransport,
    EmailTransport,
    TransportError,
    WebhookTransport,
    masked_url,
)
from tests.fakes.webhook_receiver import Answer, WebhookReceiver, webhook_receiver
from tests.subprocesses import free_port

AT = datetime.fromisoformat("2026-03-01T20:15:00+00:00")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


def target(kind: str, url: str = "", email_to: str = "") -> AlertTarget:
    return AlertTarget(name=f"my {kind}", kind=kind, url=url, email_to=email_to)


def alert(on: AlertTarget, event: str = Alert.Event.DOWN, about: str = "local") -> Alert:
    return Alert(
        target=on,
        created=AT,
        event=event,
        key="incident:1:down",
        about=about,
        subject="Local LLM is down",
        body="Down since 21:15. ConnectError: connection refused",
    )


def test_it_maps_each_kind_to_its_transport() -> None:
    assert dict(TRANSPORTS) == {
        "discord": DiscordTransport,
        "webhook": WebhookTransport,
        "email": EmailTransport,
    }


def test_it_posts_the_alert_as_discord_content_and_takes_204_as_sent(receiver: WebhookReceiver) -> None:
    on = target("discord", receiver.discord_url)

    DiscordTransport(on).send(alert(on))

    [request] = receiver.received
    assert request.path == f"/api/webhooks/1234567890/{receiver.TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert (
        request.body["content"] == "**Local LLM is down**\nDown since 21:15. ConnectError: connection refused"
    )
    assert request.body["allowed_mentions"] == {"parse": []}


def test_a_long_alert_is_cut_to_what_discord_takes(receiver: WebhookReceiver) -> None:
    on = target("discord", receiver.discord_url)
    long = alert(on)
    long.body = "x" * 5000

    DiscordTransport(on).send(long)

    assert len(receiver.received[0].body["content"]) == 2000


@override_settings(TIME_ZONE="Europe/Paris")
def test_the_generic_webhook_gets_a_json_object_with_the_time_and_its_offset(
    receiver: WebhookReceiver,
) -> None:
    on = target("webhook", receiver.url)
    receiver.answer(Answer(200, body={"ok": True}))

    WebhookTransport(on).send(alert(on))
    WebhookTransport(on).send(alert(on, Alert.Event.ADAPTER_FAILING, about="twitch"))

    first, second = (r.body for r in receiver.received)
    assert first == {
        "event": "down",
        "tier": "local",
        "subject": "Local LLM is down",
        "body": "Down since 21:15. ConnectError: connection refused",
        "time": "2026-03-01T21:15:00+01:00",
    }
    assert second["event"] == "adapter_failing"
    assert second["platform"] == "twitch"
    assert "tier" not in second


def test_a_429_asks_for_a_retry_after_what_it_says(receiver: WebhookReceiver) -> None:
    on = target("discord", receiver.discord_url)
    receiver.answer(
        Answer(429, headers={"Retry-After": "7"}),
        Answer(429, body={"message": "You are being rate limited.", "retry_after": 2.5, "global": False}),
    )

    with pytest.raises(TransportError) as header:
        DiscordTransport(on).send(alert(on))
    with pytest.raises(TransportError) as body:
        DiscordTransport(on).send(alert(on))

    assert (header.value.retry, header.value.retry_after) == (True, 7.0)
    assert body.value.retry_after == 2.5


def test_a_server_error_is_retried_and_a_refusal_is_not(receiver: WebhookReceiver) -> None:
    on = target("webhook", receiver.url)
    receiver.answer(Answer(500), Answer(404))

    with pytest.raises(TransportError) as server_error:
        WebhookTransport(on).send(alert(on))
    with pytest.raises(TransportError) as refused:
        WebhookTransport(on).send(alert(on))

    assert (server_error.value.reason, server_error.value.retry) == ("HTTP 500", True)
    assert (refused.value.reason, refused.value.retry) == ("HTTP 404", False)


def test_an_unreachable_receiver_is_retried_and_its_url_never_said(caplog: pytest.LogCaptureFixture) -> None:
    token = "s3cr3t-webhook-token-0123456789abcdef"
    on = target("discord", f"http://127.0.0.1:{free_port()}/api/webhooks/1/{token}")

    with caplog.at_level(logging.DEBUG), pytest.raises(TransportError) as refused:
        DiscordTransport(on).send(alert(on))

    assert refused.value.retry
    assert refused.value.short == "ConnectError"
    assert token not in refused.value.reason
    assert token not in caplog.text


def test_a_url_without_http_is_not_retried() -> None:
    on = target("webhook", "ftp://example.com/hook")

    with pytest.raises(TransportError) as error:
        WebhookTransport(on).send(alert(on))

    assert not error.value.retry


@override_settings(DEFAULT_FROM_EMAIL="bot@example.com")
def test_email_goes_through_django_mail_to_each_address() -> None:
    on = target("email", email_to="a@example.com, b@example.com")

    EmailTransport(on).send(alert(on))

    [message] = mail.outbox
    assert message.to == ["a@example.com", "b@example.com"]
    assert message.from_email == "bot@example.com"
    assert message.subject == "Local LLM is down"
    assert "ConnectError" in message.body


def test_email_without_an_address_fails_without_retry() -> None:
    on = target("email", email_to=" , ")

    with pytest.raises(TransportError) as error:
        EmailTransport(on).send(alert(on))

    assert not error.value.retry
    assert mail.outbox == []


def test_lists_show_where_a_webhook_goes_never_its_token() -> None:
    url = "https://discord.com/api/webhooks/123/s3cr3t-webhook-token-0123456789abcdef"

    assert masked_url(url) == "https://discord.com/…"
    assert masked_url("") == ""


def test_the_time_sent_is_the_alerts_own(receiver: WebhookReceiver) -> None:
    on = target("webhook", receiver.url)
    now = timezone.now()
    sent = alert(on)
    sent.created = now

    WebhookTransport(on).send(sent)

    assert datetime.fromisoformat(receiver.received[0].body["time"]) == now
