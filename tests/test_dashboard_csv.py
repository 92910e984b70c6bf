"""CSV exports of the chosen window: probes, calls and incidents."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from django.utils import timezone

from llm.cascade.providers import Provider
from llm.history.recorder import HistoryRecorder
from llm.models import CascadeCall
from tests.dashboard_history import HOUR, call, outage_history, probe, staff_client

pytestmark = pytest.mark.django_db
__all__ = ["staff_client"]


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
    # ISO 8601 in TIME_ZONE with its offset: a spreadsheet reads the local time and still knows the instant.
    assert rows[0]["created"] == timezone.localtime(now - 2 * HOUR).isoformat()
    assert datetime.fromisoformat(rows[0]["created"]) == now - 2 * HOUR


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

    summary = [(r["tier"], r["ongoing"], r["end"] == "", r["error"], r["downtime_in_window_s"]) for r in rows]
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


# CSV injection: a cell a spreadsheet would run as a formula is exported as text.

FORMULA = '=HYPERLINK("http://x","y")'


class FormulaErrorServer:
    """An LLM server whose every answer is an HTTP 500 with a formula for its error message."""

    def __init__(self) -> None:
        body = json.dumps({"error": {"message": FORMULA}}).encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def staff_export(path: str) -> list[dict[str, str]]:
    client = Client()
    staff, _ = User.objects.get_or_create(username="staff", defaults={"is_staff": True})
    client.force_login(staff)
    return rows_of(client, path)


@pytest.mark.django_db(transaction=True)
async def test_an_llm_servers_formula_is_exported_as_text() -> None:
    server = FormulaErrorServer()
    try:
        probe = await Provider("local", server.url, api_key="none").probe("models")
    finally:
        server.close()
    assert (probe.ok, probe.error, probe.detail) == (False, "HTTP500", FORMULA)
    recorder = HistoryRecorder(use_default_layer=False)
    recorder.record_probe(probe)
    # Up first: a tier that never answered is "not detected", not an incident.
    recorder.record_tier_event("local", "up")
    recorder.record_tier_event("local", "down", probe.error, probe.detail)
    await recorder.flush()

    [probe_row] = await sync_to_async(staff_export)("/export/probes.csv?window=24h")
    [incident] = await sync_to_async(staff_export)("/export/incidents.csv?window=24h")
    await sync_to_async(connections.close_all)()

    assert probe_row["detail"] == incident["detail"] == "'" + FORMULA
    assert probe_row["error"] == incident["error"] == "HTTP500"


@pytest.mark.parametrize("text", ["=1+1", "+1+1", "-1+cmd|' /C calc'!A0", "@SUM(A1)", "\t=1+1", "\r=1+1"])
def test_every_formula_start_is_neutralised_and_numbers_stay_numbers(staff_client: Client, text: str) -> None:
    now = timezone.now()
    for at, channel, latency in ((now - HOUR, text, -1.0), (now - HOUR / 2, "general", 300.0)):
        CascadeCall._default_manager.create(
            created=at, platform="web", channel=channel, intent="ask", source="local", latency_ms=latency
        )

    first, second = rows_of(staff_client, "/export/calls.csv?window=24h")

    assert first["channel"] == "'" + text
    assert first["latency_ms"] == "-1.0"  # a number, left as one
    assert second["channel"] == "general"
