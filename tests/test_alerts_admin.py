"""Admin: targets with masked URLs, the rules' one row, the alerts read-only, the test alert."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import constants
from django.test import Client
from django.urls import reverse

from llm.alerts.models import Alert, AlertRules, AlertTarget
from tests.alert_helpers import discord, webhook
from tests.fakes.webhook_receiver import Answer, WebhookReceiver, webhook_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


def messages_of(response: Any) -> list[tuple[int, str]]:
    return [(m.level, m.message) for m in response.context["messages"]]


def test_the_target_list_shows_where_a_webhook_goes_never_its_token(
    admin_client: Client, receiver: WebhookReceiver
) -> None:
    discord(receiver)
    webhook(receiver)

    response = admin_client.get(reverse("admin:llm_alerttarget_changelist"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "http://127.0.0.1/…" in html
    assert receiver.TOKEN not in html


def test_the_button_sends_a_test_alert_and_says_so(admin_client: Client, receiver: WebhookReceiver) -> None:
    target = discord(receiver, name="Mod channel")
    page = admin_client.get(reverse("admin:llm_alerttarget_change", args=[target.pk]))
    test_url = reverse("admin:llm_alerttarget_test", args=[target.pk])
    assert f'action="{test_url}"' in page.content.decode()

    response = admin_client.post(test_url, follow=True)

    assert response.redirect_chain == [(reverse("admin:llm_alerttarget_change", args=[target.pk]), 302)]
    assert messages_of(response) == [(constants.SUCCESS, "Test alert sent to “Mod channel”.")]
    [request] = receiver.received
    assert "Test alert" in request.body["content"]
    assert Alert.objects.get().event == "test"


def test_the_button_reports_the_error(admin_client: Client, receiver: WebhookReceiver) -> None:
    target = webhook(receiver, name="Receiver")
    receiver.answer(Answer(500))

    response = admin_client.post(reverse("admin:llm_alerttarget_test", args=[target.pk]), follow=True)

    assert messages_of(response) == [(constants.ERROR, "Test alert to “Receiver” failed: HTTP 500")]
    assert Alert.objects.get().status == "failed"


def test_the_button_takes_only_a_staff_post_with_its_csrf_token(
    admin_client: Client, admin_user: User, receiver: WebhookReceiver
) -> None:
    target = discord(receiver)
    url = reverse("admin:llm_alerttarget_test", args=[target.pk])

    assert admin_client.get(url).status_code == 405
    anonymous = Client().post(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("admin:login"))
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)
    assert strict.post(url).status_code == 403
    assert admin_client.post(reverse("admin:llm_alerttarget_test", args=[999999])).status_code == 404

    assert receiver.received == []


def test_the_action_sends_a_test_alert_to_each_selected_target(
    admin_client: Client, receiver: WebhookReceiver
) -> None:
    first, second = discord(receiver, name="One"), webhook(receiver, name="Two")
    receiver.answer(Answer(204), Answer(500))

    response = admin_client.post(
        reverse("admin:llm_alerttarget_changelist"),
        {"action": "send_test_alert", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )

    assert sorted(messages_of(response)) == [
        (constants.SUCCESS, "Test alert sent to “One”."),
        (constants.ERROR, "Test alert to “Two” failed: HTTP 500"),
    ]
    assert len(receiver.received) == 2


def test_the_rules_are_one_row(admin_client: Client) -> None:
    add = reverse("admin:llm_alertrules_add")
    assert admin_client.get(add).status_code == 200

    AlertRules.objects.create(down_after=120)

    assert admin_client.get(add).status_code == 403


def test_the_alerts_are_listed_read_only(admin_client: Client, receiver: WebhookReceiver) -> None:
    target = discord(receiver, name="Mod channel")
    alert = Alert.objects.create(
        target=target, event="down", key="incident:1:down", subject="Local LLM is down", last_error="HTTP 500"
    )

    listing = admin_client.get(reverse("admin:llm_alert_changelist"))
    change = admin_client.post(reverse("admin:llm_alert_change", args=[alert.pk]), {"status": "sent"})

    html = listing.content.decode()
    assert "Mod channel" in html and "HTTP 500" in html
    assert admin_client.get(reverse("admin:llm_alert_add")).status_code == 403
    assert change.status_code == 403
    assert Alert.objects.get().status == "pending"


def test_deleting_a_target_deletes_its_alerts(admin_client: Client, receiver: WebhookReceiver) -> None:
    target = discord(receiver)
    Alert.objects.create(target=target, event="down", key="incident:1:down", subject="down")

    response = admin_client.post(reverse("admin:llm_alerttarget_delete", args=[target.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not AlertTarget.objects.exists() and not Alert.objects.exists()
