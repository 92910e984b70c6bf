"""Seeding: the environment's alert targets created once, never duplicated or overwritten."""

from __future__ import annotations

import logging

import pytest
from django.test import override_settings

from llm.alerts.models import AlertTarget
from llm.alerts.seed import seed_targets

pytestmark = pytest.mark.django_db

DISCORD = "https://discord.com/api/webhooks/123/s3cr3t-webhook-token-0123456789abcdef"
HOOK = "https://hooks.example.com/serdabot?token=abcdef0123456789"
FROM_ENV = {
    "ALERT_DISCORD_WEBHOOK_URL": DISCORD,
    "ALERT_WEBHOOK_URL": HOOK,
    "ALERT_EMAIL_TO": ["a@example.com", "b@example.com"],
}


def rows() -> list[tuple[str, str, str, str, bool]]:
    return sorted(AlertTarget.objects.values_list("kind", "name", "url", "email_to", "enabled"))


@override_settings(**FROM_ENV)
def test_it_creates_one_target_per_setting_once() -> None:
    assert len(seed_targets()) == 3
    assert seed_targets() == []

    assert rows() == [
        ("discord", "Discord", DISCORD, "", True),
        ("email", "Email", "", "a@example.com, b@example.com", True),
        ("webhook", "Webhook", HOOK, "", True),
    ]


@override_settings(**FROM_ENV)
def test_an_edited_target_is_left_as_it_is() -> None:
    seed_targets()
    AlertTarget.objects.filter(kind="discord").update(name="Mods", enabled=False)
    AlertTarget.objects.filter(kind="email").update(email_to="B@example.com, a@example.com, c@example.com")

    assert seed_targets() == []
    assert ("discord", "Mods", DISCORD, "", False) in rows()


@override_settings(ALERT_EMAIL_TO=["a@example.com", "new@example.com"])
def test_only_addresses_no_target_has_make_a_new_one() -> None:
    AlertTarget.objects.create(name="Mine", kind="email", email_to="A@example.com")

    [created] = seed_targets()

    assert created.email_to == "new@example.com"


@override_settings(ALERT_DISCORD_WEBHOOK_URL="discord.com/api/webhooks/1/s3cr3t-webhook-token-0123456789")
def test_a_url_that_is_not_one_is_reported_without_its_token(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="llm.alerts"):
        assert seed_targets() == []

    assert "ALERT_DISCORD_WEBHOOK_URL is not an http(s) URL" in caplog.text
    assert "s3cr3t" not in caplog.text


def test_nothing_set_creates_nothing() -> None:
    assert seed_targets() == []
    assert not AlertTarget.objects.exists()
