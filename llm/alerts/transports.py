"""How an alert leaves: one class per kind of target, `TRANSPORTS` maps a kind to its class.

A transport sends one alert or raises `TransportError` saying why (never with the
target's URL in it: a webhook URL carries its token), whether trying again can help,
and after how long the receiver asked to be left alone.
"""

from __future__ import annotations

import json
import smtplib
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.utils import timezone

from llm.alerts.models import Alert, AlertTarget
from serdabot.outage import describe

# Short: an alert that cannot go out now is tried again later, and a hung receiver must
# not hold up the others behind it.
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
EMAIL_TIMEOUT = 10.0
DISCORD_LIMIT = 2000  # characters Discord takes in one message
# Path segments at least this long may be a token (Discord: /api/webhooks/<id>/<token>).
TOKEN_LENGTH = 8
TIER_EVENTS = frozenset({Alert.Event.DOWN, Alert.Event.UP, Alert.Event.BUDGET})
ADAPTER_EVENTS = frozenset({Alert.Event.ADAPTER_FAILING, Alert.Event.ADAPTER_BACK})


class TransportError(Exception):
    """`reason` is recorded on the alert; `short` (a status or an error class) is all a log line says."""

    def __init__(
        self, reason: str, *, short: str = "", retry: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason[:300]
        self.short = short or reason
        self.retry = retry
        self.retry_after = retry_after

    @classmethod
    def from_exception(cls, exc: BaseException, url: str = "", *, retry: bool = True) -> TransportError:
        return cls(without_url(describe(exc), url), short=type(exc).__name__, retry=retry)


def without_url(text: str, url: str) -> str:
    """`text` without `url` or any long piece of it, whatever an HTTP library put in its message."""
    if not url:
        return text
    text = text.replace(url, "<url>")
    parts = urlsplit(url)
    for piece in [*parts.path.split("/"), parts.query]:
        if len(piece) >= TOKEN_LENGTH:
            text = text.replace(piece, "…")
    return text


def masked_url(url: str) -> str:
    """What a list may show of a webhook URL: where it goes, never its token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/…" if parts.scheme and parts.hostname else ("…" if url else "")


def retry_after(response: httpx.Response) -> float | None:
    """Seconds a 429 asks to wait: the Retry-After header, or Discord's JSON `retry_after`."""
    candidates: list[Any] = [response.headers.get("Retry-After")]
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        candidates.append(body.get("retry_after"))
    for value in candidates:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        if seconds >= 0:
            return seconds
    return None


class Transport:
    def __init__(self, target: AlertTarget) -> None:
        self.target = target

    def send(self, alert: Alert) -> None:
        raise NotImplementedError


class HttpTransport(Transport):
    def post(self, payload: dict[str, Any]) -> None:
        url = self.target.url
        try:
            with httpx.Client(timeout=TIMEOUT) as client:
                response = client.post(url, json=payload, headers={"User-Agent": "SerdaBot alerts"})
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise TransportError.from_exception(exc, url, retry=False) from None
        except httpx.HTTPError as exc:
            raise TransportError.from_exception(exc, url) from None
        if response.is_success:
            return
        status = response.status_code
        if status == 429:
            wait = retry_after(response)
            raise TransportError("HTTP 429 (rate limited)", retry_after=wait)
        # A refusal (404: the webhook was deleted, 401, 400) will not change by itself.
        raise TransportError(f"HTTP {status}", retry=status >= 500 or status == 408)


class DiscordTransport(HttpTransport):
    def send(self, alert: Alert) -> None:
        text = f"**{alert.subject}**\n{alert.body}".strip()
        if len(text) > DISCORD_LIMIT:
            text = text[: DISCORD_LIMIT - 1] + "…"
        # No mentions: an error message saying "@everyone" must not ping the server.
        self.post({"content": text, "allowed_mentions": {"parse": []}})


class WebhookTransport(HttpTransport):
    def send(self, alert: Alert) -> None:
        self.post(payload(alert))


def payload(alert: Alert) -> dict[str, Any]:
    """The generic webhook's JSON: what happened, to what, and when (ISO 8601, with its offset)."""
    body: dict[str, Any] = {"event": alert.event}
    if alert.event in TIER_EVENTS:
        body["tier"] = alert.about
    elif alert.event in ADAPTER_EVENTS:
        body["platform"] = alert.about
    body.update(
        subject=alert.subject,
        body=alert.body,
        time=timezone.localtime(alert.created).isoformat(),
    )
    return body


def addresses(email_to: str) -> list[str]:
    return [a.strip() for a in email_to.split(",") if a.strip()]


class EmailTransport(Transport):
    def send(self, alert: Alert) -> None:
        recipients = addresses(self.target.email_to)
        if not recipients:
            raise TransportError("no address to send to", retry=False)
        # Django's default is no timeout at all: a mail server that never answers would
        # hold the alerts behind this one for ever.
        timeout = getattr(settings, "EMAIL_TIMEOUT", None) or EMAIL_TIMEOUT
        try:
            send_mail(
                alert.subject,
                alert.body,
                settings.DEFAULT_FROM_EMAIL,
                recipients,
                connection=get_connection(timeout=timeout),
            )
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError.from_exception(exc) from None


TRANSPORTS: dict[str, type[Transport]] = {
    AlertTarget.Kind.DISCORD: DiscordTransport,
    AlertTarget.Kind.WEBHOOK: WebhookTransport,
    AlertTarget.Kind.EMAIL: EmailTransport,
}
