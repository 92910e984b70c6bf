"""An error body that echoes the API key reaches no history row, dashboard, CSV or `llmstatus` output."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from llm.cascade.config import load_config
from llm.cascade.results import CascadeResult, ProbeResult
from llm.cascade.service import LLMService
from llm.history.backfill import backfill_if_needed
from llm.history.recorder import HistoryRecorder
from llm.management.commands.llmstatus import render, status_report
from llm.models import BootDetection, CascadeCall, Probe, TierEvent
from serdabot.redact import MASK
from tests.dashboard_history import HOUR, staff_client
from tests.fakes.openai_server import FakeOpenAI
from tests.llm_helpers import rows
from tests.subprocesses import bot_env, manage

__all__ = ["staff_client"]

# A proxy's key: not shaped like an OpenAI key, so only the configured value can catch it.
KEY = "proxy-" + "5e1c0ffee0ddba11" * 3
ECHO = f"Incorrect API key provided: {KEY}"


@pytest.fixture(autouse=True)
def configured_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


@pytest.mark.django_db(transaction=True)
async def test_the_history_stores_no_echoed_key() -> None:
    recorder = HistoryRecorder(use_default_layer=False)
    failed = ProbeResult(
        "openai", "http://127.0.0.1:1/v1", ok=False, latency_ms=2.0, error="HTTP401", detail=ECHO
    )
    recorder.record_probe(failed)
    recorder.record_tier_event("openai", "down", "HTTP401", ECHO)
    recorder.record_boot(
        mode="auto", found=False, endpoint=f"http://bot:{KEY}@127.0.0.1:1/v1", error=f"HTTP401 {KEY}"
    )
    result = CascadeResult(None, "fallback", 3.0, {"openai": f"HTTP401 {KEY}"}, attempted=True)
    recorder.record_call(platform="twitch", intent="ask", result=result)

    await recorder.flush()

    [probe], [event] = await rows(Probe), await rows(TierEvent)
    [boot], [call] = await rows(BootDetection), await rows(CascadeCall)
    assert probe.detail == event.detail == f"Incorrect API key provided: {MASK}"
    assert boot.endpoint == f"http://bot:{MASK}@127.0.0.1:1/v1"
    assert boot.error == call.errors["openai"] == f"HTTP401 {MASK}"


@pytest.mark.django_db(transaction=True)
async def test_a_key_is_redacted_before_the_detail_is_cut_to_length() -> None:
    # Cut first, the key's first 20 characters would be stored, past any recognition.
    recorder = HistoryRecorder(use_default_layer=False)
    recorder.record_tier_event("openai", "down", "HTTP401", "x" * 280 + KEY)

    await recorder.flush()

    [event] = await rows(TierEvent)
    assert event.detail == "x" * 280 + MASK[:20]
    assert KEY[:8] not in event.detail


def rows_stored_before_redaction() -> None:
    # Written straight to the tables, as rows recorded by an older version would be.
    now = timezone.now()
    Probe._default_manager.create(
        created=now - HOUR, tier="openai", ok=False, error="HTTP401", detail=ECHO, latency_ms=None
    )
    TierEvent._default_manager.create(created=now - 3 * HOUR, tier="openai", state="up")
    TierEvent._default_manager.create(
        created=now - 2 * HOUR, tier="openai", state="down", error="HTTP401", detail=ECHO
    )
    backfill_if_needed()  # what the first `runbot` of this version does with them


def test_the_dashboard_shows_no_stored_key(staff_client: Client) -> None:
    rows_stored_before_redaction()

    html = staff_client.get("/?window=24h").content.decode()

    assert KEY not in html
    assert f"Incorrect API key provided: {MASK}" in html  # the incident and the tier's current state


@pytest.mark.parametrize(("export", "column"), [("probes", "detail"), ("incidents", "detail")])
def test_the_csv_exports_hold_no_stored_key(staff_client: Client, export: str, column: str) -> None:
    rows_stored_before_redaction()

    response = staff_client.get(f"/export/{export}.csv?window=24h")

    content = response.content.decode()
    assert KEY not in content
    [row] = list(csv.DictReader(io.StringIO(content)))
    assert row[column] == f"Incorrect API key provided: {MASK}"


def test_a_call_whose_stored_errors_hold_a_key_exports_without_it(staff_client: Client) -> None:
    CascadeCall._default_manager.create(
        created=timezone.now() - HOUR,
        platform="twitch",
        intent="ask",
        source="fallback",
        latency_ms=5.0,
        errors={"openai": f"HTTP401 {KEY}"},
    )

    content = staff_client.get("/export/calls.csv?window=24h").content.decode()

    [row] = list(csv.DictReader(io.StringIO(content)))
    assert json.loads(row["errors"]) == {"openai": f"HTTP401 {MASK}"}


def test_the_status_report_redacts_what_a_probe_brought_back() -> None:
    service = LLMService(load_config({"LLM_MODE": "disabled"}), HistoryRecorder(use_default_layer=False))
    probe = ProbeResult(
        "local", "http://127.0.0.1:1/v1", ok=False, latency_ms=4.0, error="HTTP401", detail=ECHO
    )

    report = status_report(service, [probe])

    assert report["tiers"][0]["detail"] == f"Incorrect API key provided: {MASK}"
    assert KEY not in json.dumps(report) + "\n".join(render(report))


def test_llmstatus_prints_no_key_a_proxy_echoes(local_dir: Path) -> None:
    with FakeOpenAI(models=("gpt-4o-mini",)) as proxy:
        proxy.set_fault("echo_key_401")
        env = bot_env(local_dir, OPENAI_API_KEY=KEY, OPENAI_BASE_URL=proxy.url)
        result = manage(env, "llmstatus", "--json")
        echoed = proxy.probe_requests

    assert result.returncode == 0, result.stderr
    assert echoed >= 1  # the proxy did answer with the key in its body
    openai = {t["tier"]: t for t in json.loads(result.stdout)["tiers"]}["openai"]
    assert (openai["ok"], openai["error"]) == (False, "HTTP401")
    assert KEY not in result.stdout + result.stderr
    with sqlite3.connect(local_dir / "db.sqlite3") as db:
        stored = db.execute("SELECT error || ' ' || detail FROM llm_probe WHERE tier = 'openai'").fetchall()
    assert stored and all(KEY not in text for (text,) in stored)
