"""Targets, history rows and a receiver for the alerts' tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from llm.alerts.models import AlertTarget
from llm.models import Absence, Incident
from tests.fakes.webhook_receiver import WebhookReceiver

# Targets exist from well before the events the tests make.
LONG_AGO = timedelta(days=30)


def discord(receiver: WebhookReceiver, name: str = "Discord", **fields: object) -> AlertTarget:
    return AlertTarget.objects.create(
        name=name,
        kind=AlertTarget.Kind.DISCORD,
        url=receiver.discord_url,
        created=timezone.now() - LONG_AGO,
        **fields,
    )


def webhook(receiver: WebhookReceiver, name: str = "Receiver", **fields: object) -> AlertTarget:
    return AlertTarget.objects.create(
        name=name,
        kind=AlertTarget.Kind.WEBHOOK,
        url=receiver.url,
        created=timezone.now() - LONG_AGO,
        **fields,
    )


def email(to: str = "streamer@example.com", name: str = "Email") -> AlertTarget:
    return AlertTarget.objects.create(
        name=name, kind=AlertTarget.Kind.EMAIL, email_to=to, created=timezone.now() - LONG_AGO
    )


def incident(
    started: datetime, ended: datetime | None = None, *, tier: str = "local", scope: str = "bot"
) -> Incident:
    return Incident.objects.create(
        tier=tier,
        scope=scope,
        started=started,
        ended=ended,
        state="down",
        cause="ConnectError",
        detail="connection refused",
    )


def absence(
    started: datetime,
    ended: datetime | None = None,
    *,
    kind: str = "budget",
    tier: str = "openai",
    scope: str = "bot",
) -> Absence:
    return Absence.objects.create(tier=tier, scope=scope, started=started, ended=ended, state=kind, kind=kind)
