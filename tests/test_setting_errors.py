"""A wrong setting met by a page gets a page naming it, not a server error."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_login_in_twitch_bot_id_gives_the_setup_page_a_clear_error(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.force_login(User.objects.create_superuser("streamer", "s@example.com", "pw-0123456789"))
    monkeypatch.setenv("TWITCH_BOT_ID", "serdabot_tv")
    response = client.get("/twitch/connect/")
    assert response.status_code == 503
    problem = response.context["problem"]
    assert "TWITCH_BOT_ID" in problem
    assert 'id="setting-problem"' in response.content.decode()


def test_with_good_settings_the_page_renders(client: Client) -> None:
    client.force_login(User.objects.create_superuser("streamer", "s@example.com", "pw-0123456789"))
    response = client.get("/twitch/connect/")
    assert response.status_code == 200
