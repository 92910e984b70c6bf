"""`manage.py chat` end to end, as a real process on its own database."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI
from tests.subprocesses import bot_env, manage


def phrases(local_dir: Path, intent: str) -> set[str]:
    with sqlite3.connect(local_dir / "db.sqlite3") as db:
        rows = db.execute(
            "SELECT p.text FROM fallbacks_phrase p JOIN fallbacks_intent i ON p.intent_id = i.id "
            "WHERE i.slug = ? AND p.enabled",
            (intent,),
        ).fetchall()
    return {text for (text,) in rows}


def test_it_answers_ask_from_the_database_when_no_llm_listens(local_dir: Path) -> None:
    result = manage(bot_env(local_dir), "chat", "--json", "-m", "!ask c'est quoi Python ?")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["source"] == "fallback"
    assert data["intent"] == "ask"
    assert data["reply"].startswith("@viewer ")
    assert data["reply"].removeprefix("@viewer ") in phrases(local_dir, "ask")
    assert isinstance(data["latency_ms"], float)


def test_it_answers_lines_from_stdin_one_json_object_each(local_dir: Path) -> None:
    result = manage(
        bot_env(local_dir), "chat", "--json", "--user", "alice", input="bonjour le chat\n!ask\nserdabot?\n"
    )

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [line["reply"] is None for line in lines] == [True, False, False]
    assert "!ask" in lines[1]["reply"]  # the usage hint
    assert lines[2]["intent"] == "chill"
    assert lines[2]["reply"].removeprefix("@alice ") in phrases(local_dir, "chill")


def test_llm_mode_disabled_answers_without_looking_for_a_model(local_dir: Path) -> None:
    result = manage(bot_env(local_dir, LLM_MODE="disabled"), "chat", "--json", "-m", "!ask ping")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["source"] == "fallback"


def test_a_bad_setting_stops_start_up_with_one_clear_line(local_dir: Path) -> None:
    result = manage(bot_env(local_dir, LLM_MODE="sometimes"), "chat", "-m", "!ask ping")

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "LLM_MODE" in lines[0]


def test_it_answers_from_an_openai_compatible_server_at_llm_endpoint(local_dir: Path) -> None:
    with FakeOpenAI(models=("lm-studio-model",)) as server:
        result = manage(
            bot_env(local_dir, LLM_ENDPOINT=server.url), "chat", "--json", "-m", "!ask c'est quoi Python ?"
        )

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["source"] == "local"
    assert data["reply"] == f"@viewer {DEFAULT_ANSWER}"
    # The model is the first one the server lists, found by boot detection.
    assert "lm-studio-model" in result.stderr
    assert [r.body["model"] for r in server.requests if r.method == "POST"] == ["lm-studio-model"]
