"""The dashboard page: staff only, every window, and the numbers a streamer reads on it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from chatbridge.models import AdapterState
from llm.models import BootDetection
from tests.dashboard_history import HOUR, call, outage_history, probe, staff_client

pytestmark = pytest.mark.django_db
__all__ = ["staff_client"]


def text_of(html: bytes) -> str:
    """The page's visible text, whitespace collapsed."""
    text = re.sub(r"<title>.*?</title>|<[^>]+>", " ", html.decode())
    return re.sub(r"\s+", " ", text)


def minutes(value: timedelta) -> int:
    return round(value.total_seconds() / 60)


def test_anonymous_visitors_are_sent_to_the_login_page() -> None:
    response = Client().get("/?window=7d")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/")


def test_it_refuses_a_user_who_is_not_staff() -> None:
    client = Client()
    client.force_login(User.objects.create_user("viewer", password="x"))

    assert client.get("/").status_code == 302
    assert client.get("/export/probes.csv").status_code == 302


@pytest.mark.parametrize(
    ("query", "label", "span", "incidents"),
    [
        ("window=1h", "Last hour", timedelta(hours=1), 1),
        ("window=24h", "24 h", timedelta(hours=24), 3),
        ("", "24 h", timedelta(hours=24), 3),
        ("window=7d", "7 days", timedelta(days=7), 4),
        ("window=30d", "30 days", timedelta(days=30), 4),
    ],
)
def test_each_window_shows_its_own_incidents(
    staff_client: Client, query: str, label: str, span: timedelta, incidents: int
) -> None:
    now = timezone.now()
    outage_history(now)

    response = staff_client.get(f"/?{query}")

    assert response.status_code == 200
    context = response.context
    assert context["span"].label == label
    assert context["span"].end - context["span"].start == pytest.approx(span, abs=timedelta(seconds=5))
    assert context["incident_count"] == incidents
    assert f"{incidents} incident" in text_of(response.content)


def test_a_custom_range_shows_only_that_range(staff_client: Client) -> None:
    now = timezone.now()
    outage_history(now)
    start = timezone.localtime(now - 51 * HOUR).strftime("%Y-%m-%dT%H:%M")
    end = timezone.localtime(now - 48 * HOUR).strftime("%Y-%m-%dT%H:%M")

    response = staff_client.get(f"/?window=custom&start={start}&end={end}")

    assert response.context["span"].label == "Custom range"
    [row] = response.context["incidents"]
    assert (row["incident"].tier, row["incident"].error, row["duration"]) == ("local", "ConnectError", HOUR)


def test_a_bad_custom_range_says_so_and_shows_the_default(staff_client: Client) -> None:
    response = staff_client.get("/?window=custom&start=2025-01-02T00:00&end=2025-01-01T00:00")

    assert response.status_code == 200
    assert "The range must end after it starts." in text_of(response.content)
    assert response.context["span"].label == "24 h"


def test_it_shows_uptime_and_incident_durations(staff_client: Client) -> None:
    now = timezone.now()
    outage_history(now)
    for hours in (1, 3, 5):
        probe(now - hours * HOUR, latency=80.0)
    probe(now - 2 * HOUR, ok=False, error="ConnectError")
    probe(now - 3 * 24 * HOUR, ok=False, error="ConnectError")

    response = staff_client.get("/?window=24h")
    page = text_of(response.content)

    local = response.context["tiers"][0]
    assert local["tier"] == "local"
    # Uptime is time, not probes: 1 h 30 min of downtime in the last 24 h; 4 h 30 min since the
    # tier was first seen 60 h ago, which is all the 7 days it was expected to answer.
    assert local["uptime"]["24h"].percent == pytest.approx(100 * (1 - 1.5 / 24), abs=0.001)
    assert local["uptime"]["7d"].percent == pytest.approx(100 * (1 - 4.5 / 60), abs=0.001)
    assert abs(local["uptime"]["7d"].expected - 60 * HOUR) < timedelta(seconds=5)
    assert "93.75 %" in page and "92.50 %" in page
    assert local["probes"].count == 4 and local["probes"].ok == 3
    # In minutes: the ongoing one grows by the few milliseconds the request takes.
    rows = [
        (r["incident"].tier, r["incident"].ongoing, minutes(r["duration"]), minutes(r["in_window"]))
        for r in response.context["incidents"]
    ]
    assert rows == [("openai", True, 120, 120), ("local", False, 30, 30), ("local", False, 180, 60)]
    assert "ongoing" in page
    assert "2 h" in page and "30 min" in page and "3 h" in page
    # Downtime inside the window: 2 h ongoing + 30 min + the last hour of the spanning one.
    assert "3 h 30 min of downtime within it" in page
    assert 'class="state tone-down state-down" data-state-for="openai">Down<' in response.content.decode()


def test_it_shows_the_heartbeat_with_time_latency_and_error(staff_client: Client) -> None:
    now = timezone.now()
    probe(now - 2 * HOUR, latency=123.4)
    probe(now - HOUR, ok=False, error="ReadTimeout")

    html = staff_client.get("/").content.decode()

    beats = re.findall(r'<rect class="beat (up|down)"[^>]*><title>([^<]*)</title>', html)
    assert [state for state, _ in beats] == ["up", "down"]
    assert beats[0][1].endswith("· up · 123 ms")
    assert beats[1][1].endswith("· down · ReadTimeout")


def test_it_shows_replies_by_source_and_the_fallback_share(staff_client: Client) -> None:
    now = timezone.now()
    for i in range(3):
        call(now - timedelta(minutes=5 + i), "local")
    call(now - timedelta(minutes=20), "fallback")

    page = text_of(staff_client.get("/?window=1h").content)

    assert "25.0 % of 4 replies in this window were fallback phrases" in page
    assert "Local LLM: 3" in page and "OpenAI: 0" in page and "Fallback phrase: 1" in page


def test_it_shows_boot_detections_and_adapter_states(staff_client: Client) -> None:
    BootDetection._default_manager.create(
        mode="auto", found=True, endpoint="http://127.0.0.1:1234/v1", model="smollm2-135m", process="runbot"
    )
    AdapterState.objects.create(
        platform="twitch",
        state="reconnecting",
        last_error="ConnectionResetError",
        messages_in=42,
        messages_out=7,
        replies_dropped=3,
    )

    page = text_of(staff_client.get("/").content)

    assert "runbot" in page and "found" in page and "smollm2-135m" in page
    assert "Twitch Reconnecting" in page and "ConnectionResetError" in page
    assert "42 7 3" in page


def test_the_partial_page_is_the_panels_alone(staff_client: Client) -> None:
    response = staff_client.get("/?window=7d&partial=1")

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and 'class="panel tier"' in html


@pytest.mark.parametrize(
    "query",
    [
        "window=custom&start=0001-01-01T00:00&end=0001-01-01T01:00",
        "window=custom&start=1999-12-31T23:00",
        "window=custom&start=not-a-date",
        "window=365000d",
        "window=custom&start=2026-03-29T02:30",  # skipped by the clocks in Europe/Paris
    ],
)
def test_a_bad_range_gets_an_error_and_the_last_24_h(staff_client: Client, query: str) -> None:
    with timezone.override("Europe/Paris"):
        response = staff_client.get(f"/?{query}")

    assert response.status_code == 200
    assert response.context["span"].key == "24h"
    assert "Showing the last 24 h instead." in text_of(response.content)
