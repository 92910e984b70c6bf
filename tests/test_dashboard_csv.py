"""CSV exports of the chosen window: probes, calls and incidents."""

from __future__ import annotations

import csv
import io
from datetime import UTC

import pytest
from django.test import Client
from django.utils import timezone

from tests.dashboard_history import HOUR, call, fresh_bucket_cache, outage_history, probe, staff_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_bucket_cache")]
__all__ = ["fresh_bucket_cache", "staff_client"]


def rows_of(client: Client, path: str) -> list[dict[str, str]]:
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_it_exports_the_probes_of_the_window(staff_client: Client) -> None:
    now = timezone.now()
    probe(now - 30 * HOUR)  # outside 24 h
    probe(now - 2 * HOUR, latency=81.25)
    probe(now - HOUR, "openai", ok=False, error="HTTP503")

    rows = rows_of(staff_client, "/export/probes.csv?window=24h")

    assert [(r["tier"], r["ok"], r["latency_ms"], r["error"]) for r in rows] == [
        ("local", "1", "81.2", ""),
        ("openai", "0", "", "HTTP503"),
    ]
    assert rows[0]["created_utc"] == (now - 2 * HOUR).astimezone(UTC).isoformat()


def test_it_exports_calls_without_chat_text(staff_client: Client) -> None:
    now = timezone.now()
    call(now - 10 * HOUR, "fallback", platform="discord", latency=1500)
    call(now - 2 * 24 * HOUR, "local")  # outside 24 h

    [row] = rows_of(staff_client, "/export/calls.csv?window=24h")

    assert (row["platform"], row["source"], row["latency_ms"], row["timed_out"]) == (
        "discord",
        "fallback",
        "1500.0",
        "0",
    )
    assert "text" not in row and "user" not in row


def test_it_exports_incidents_with_durations(staff_client: Client) -> None:
    now = timezone.now()
    outage_history(now)

    rows = rows_of(staff_client, "/export/incidents.csv?window=24h")

    summary = [
        (r["tier"], r["ongoing"], r["end_utc"] == "", r["error"], r["downtime_in_window_s"]) for r in rows
    ]
    assert summary == [
        ("local", "0", False, "ReadTimeout", "3600"),
        ("local", "0", False, "HTTP503", "1800"),
        ("openai", "1", True, "AuthenticationError", "7200"),
    ]
    assert [abs(int(r["duration_s"]) - s) <= 2 for r, s in zip(rows, (10800, 1800, 7200), strict=True)] == [
        True
    ] * 3


def test_a_custom_range_exports_that_range(staff_client: Client) -> None:
    now = timezone.now()
    probe(now - 50 * HOUR)
    probe(now - 10 * HOUR)
    start = timezone.localtime(now - 51 * HOUR).strftime("%Y-%m-%dT%H:%M")
    end = timezone.localtime(now - 48 * HOUR).strftime("%Y-%m-%dT%H:%M")

    rows = rows_of(staff_client, f"/export/probes.csv?window=custom&start={start}&end={end}")

    assert len(rows) == 1


def test_an_unknown_export_is_not_found(staff_client: Client) -> None:
    assert staff_client.get("/export/secrets.csv").status_code == 404
