"""`manage.py llmstatus [--json]` as a real process on its own database."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.llm_helpers import TEST_KEY
from tests.subprocesses import bot_env, closed_endpoint, manage


@pytest.fixture
def local() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(models=("smollm2-135m", "qwen")) as server:
        yield server


def probes(local_dir: Path) -> list[tuple[str, str, int, str]]:
    with sqlite3.connect(local_dir / "db.sqlite3") as db:
        return db.execute("SELECT tier, kind, ok, error FROM llm_probe ORDER BY tier").fetchall()


def test_it_probes_every_configured_tier_and_prints_json(local_dir: Path, local: FakeOpenAI) -> None:
    with FakeOpenAI(models=("gpt-4o-mini",)) as openai:
        env = bot_env(local_dir, LLM_ENDPOINT=local.url, OPENAI_API_KEY=TEST_KEY, OPENAI_BASE_URL=openai.url)
        result = manage(env, "llmstatus", "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["mode"], report["probe"]) == ("auto", "models")
    by_tier = {t["tier"]: t for t in report["tiers"]}
    assert by_tier["local"]["ok"] and by_tier["openai"]["ok"]
    assert by_tier["local"]["url"] == local.url
    assert by_tier["local"]["models"] == ["smollm2-135m", "qwen"]
    assert by_tier["openai"]["models"] == ["gpt-4o-mini"]
    assert isinstance(by_tier["local"]["latency_ms"], float)
    assert TEST_KEY not in result.stdout + result.stderr
    assert probes(local_dir) == [("local", "models", 1, ""), ("openai", "models", 1, "")]


def test_it_reports_the_error_of_a_tier_that_is_down(local_dir: Path) -> None:
    endpoint = closed_endpoint()
    result = manage(bot_env(local_dir, LLM_ENDPOINT=endpoint), "llmstatus", "--json")

    assert result.returncode == 0, result.stderr
    local, openai = json.loads(result.stdout)["tiers"]
    assert (local["tier"], local["ok"], local["error"], local["url"]) == (
        "local",
        False,
        "ConnectError",
        endpoint,
    )
    assert (openai["tier"], openai["error"]) == ("openai", "NotConfigured")
    assert probes(local_dir) == [("local", "models", 0, "ConnectError")]


def test_it_prints_a_readable_summary(local_dir: Path, local: FakeOpenAI) -> None:
    result = manage(bot_env(local_dir, LLM_ENDPOINT=local.url, LLM_PROBE="completion"), "llmstatus")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "LLM_MODE=auto  probe=completion  fallback=fun"
    assert lines[1].startswith(f"local   OK    {local.url}  ")
    assert lines[1].endswith("models: smollm2-135m")
    assert lines[2] == "openai  not configured (no OPENAI_API_KEY)"
    assert local.chat_requests == 0 and local.probe_requests >= 1
