"""The dashboard's alert list: the latest alerts and their template."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from llm.alerts.models import Alert, AlertTarget
from llm.alerts.recent import recent_alerts

pytestmark = pytest.mark.django_db


def test_it_lists_the_latest_alerts_first() -> None:
    target = AlertTarget.objects.create(name="Mods", kind="email", email_to="m@example.com")
    for n in range(3):
        Alert.objects.create(target=target, event="down", key=f"incident:{n}:down", subject="down")

    assert [a.key for a in recent_alerts(limit=2)] == ["incident:2:down", "incident:1:down"]


def test_the_table_shows_each_alert_and_links_to_the_admin() -> None:
    target = AlertTarget.objects.create(name="Mods", kind="email", email_to="m@example.com")
    Alert.objects.create(
        target=target,
        event="adapter_failing",
        key="adapter:twitch:failing:x",
        subject="Twitch adapter failing",
        status="pending",
        attempts=2,
        last_error="SMTPServerDisconnected",
    )

    html = render_to_string("llm/_alerts.html", {"alerts": recent_alerts()})

    for text in ("Adapter failing", "Mods", "Pending", "2 attempts", "SMTPServerDisconnected"):
        assert text in html
    assert reverse("admin:llm_alert_changelist") in html


def test_no_alert_yet_says_so() -> None:
    html = render_to_string("llm/_alerts.html", {"alerts": recent_alerts()})

    assert "No alert sent yet." in html
