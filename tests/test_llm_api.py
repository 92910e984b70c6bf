"""The seed's Python API (llm.api) against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatbridge import prompts
from llm import api
from llm.cascade.config import ConfigError
from llm.models import CascadeCall
from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI
from tests.llm_helpers import rows
from tests.subprocesses import bot_env, closed_endpoint, manage

FOUND = "✅ LLM détecté : {}"
NOT_FOUND = "⚠️  LLM non disponible → mode fallback activé"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer's LLM, OpenAI key or config file: each test says what it uses."""
    for name in list(os.environ):
        if name.startswith(("LLM_", "OPENAI_", "SERDABOT_CONFIG", "PROMPT_", "FALLBACK_MODE")):
            monkeypatch.delenv(name)


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def local(url: str, **llm: Any) -> dict[str, Any]:
    return {"bot": {"llm": {"endpoint": url, **llm}}}


# -- get_llm_mode ----------------------------------------------------------------------


def test_get_llm_mode_is_auto_by_default() -> None:
    assert api.get_llm_mode({"bot": {}}) == "auto"
    assert api.get_llm_mode({}) == "auto"
    assert api.get_llm_mode() == "auto"


@pytest.mark.parametrize(
    ("enabled", "mode"),
    [(True, "enabled"), (False, "disabled"), ("auto", "auto"), ("true", "enabled"), ("false", "disabled")],
)
def test_get_llm_mode_reads_bot_llm_enabled(enabled: object, mode: str) -> None:
    assert api.get_llm_mode({"bot": {"llm": {"enabled": enabled}}}) == mode


def test_get_llm_mode_lets_the_environment_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_MODE", "disabled")

    assert api.get_llm_mode({"bot": {"llm": {"enabled": True}}}) == "disabled"
    assert api.get_llm_mode() == "disabled"


def test_get_llm_mode_without_a_config_reads_the_projects_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "serdabot.yaml"
    path.write_text("bot:\n  llm:\n    enabled: false\n", encoding="utf-8")
    monkeypatch.setenv("SERDABOT_CONFIG", str(path))

    assert api.get_llm_mode() == "disabled"


def test_get_llm_mode_refuses_a_value_it_cannot_use() -> None:
    with pytest.raises(ConfigError, match=r"bot\.llm\.enabled"):
        api.get_llm_mode({"bot": {"llm": {"enabled": "sometimes"}}})


# -- is_llm_available ------------------------------------------------------------------


def test_is_llm_available_when_models_answers(model: FakeOpenAI) -> None:
    assert api.is_llm_available(f"{model.url}/models") is True
    # The API base works too: /models is added.
    assert api.is_llm_available(model.url) is True
    assert [r.path for r in model.requests] == ["/v1/models", "/v1/models"]


def test_is_llm_available_is_false_when_nothing_listens() -> None:
    started = time.monotonic()

    assert api.is_llm_available(f"{closed_endpoint()}/models") is False
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("fault", ["http500", "malformed_json", "echo_key_401"])
def test_is_llm_available_is_false_when_the_server_answers_badly(model: FakeOpenAI, fault: str) -> None:
    model.set_fault(fault)

    assert api.is_llm_available(model.url) is False


def test_is_llm_available_gives_up_after_its_timeout(model: FakeOpenAI) -> None:
    model.set_fault("hang")
    started = time.monotonic()

    assert api.is_llm_available(model.url, timeout=0.3) is False
    assert time.monotonic() - started < 1.5


def test_is_llm_available_without_arguments_asks_llm_endpoint(
    model: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_ENDPOINT", model.url)
    assert api.is_llm_available() is True
    monkeypatch.setenv("LLM_ENDPOINT", closed_endpoint())
    assert api.is_llm_available() is False


async def test_is_llm_available_works_inside_a_running_event_loop(model: FakeOpenAI) -> None:
    assert api.is_llm_available(model.url) is True


# -- check_llm_status ------------------------------------------------------------------


def test_check_llm_status_with_the_specs_messages(model: FakeOpenAI) -> None:
    assert api.check_llm_status(local(model.url)) == (True, FOUND.format(model.url))
    assert api.check_llm_status(local(closed_endpoint())) == (False, NOT_FOUND)


def test_check_llm_status_reads_the_originals_model_endpoint(model: FakeOpenAI) -> None:
    config = {"bot": {"model_endpoint": f"{model.url}/chat/completions"}}

    assert api.check_llm_status(config) == (True, FOUND.format(model.url))


def test_check_llm_status_without_a_config_uses_the_projects_settings(
    model: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_ENDPOINT", closed_endpoint())
    assert api.check_llm_status() == (False, NOT_FOUND)
    monkeypatch.setenv("LLM_ENDPOINT", model.url)
    assert api.check_llm_status() == (True, FOUND.format(model.url))


# -- call_model ------------------------------------------------------------------------


@pytest.fixture
async def started() -> AsyncIterator[None]:
    yield
    await api.shutdown()


def completions(server: FakeOpenAI) -> list[Any]:
    return [r for r in server.requests if r.path.endswith("/chat/completions") and not r.is_probe]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("started")
async def test_call_model_answers_through_the_cascade_and_records_the_call(model: FakeOpenAI) -> None:
    config = local(model.url, model="fake-model")

    answer = await api.call_model("c'est quoi Python ?", config, user="alice", mode="ask")
    mention = await api.call_model("salut serdabot", config, user="bob", mode="chill")

    assert (answer, mention) == (DEFAULT_ANSWER, DEFAULT_ANSWER)
    sent = completions(model)
    assert [r.body["messages"][0]["content"] for r in sent] == [prompts.ASK, prompts.CHILL]
    assert sent[0].body["messages"][-1] == {"role": "user", "content": "c'est quoi Python ?"}
    # One service for both calls: boot detection asked /models once.
    assert len([r for r in model.requests if r.path.endswith("/models")]) == 1
    calls = await rows(CascadeCall)
    assert [(c.platform, c.intent, c.source) for c in calls] == [
        ("api", "ask", "local"),
        ("api", "chill", "local"),
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("started")
async def test_call_model_takes_a_system_prompt(model: FakeOpenAI) -> None:
    await api.call_model("ping", local(model.url), system_prompt="Réponds pong.")

    assert completions(model)[0].body["messages"][0] == {"role": "system", "content": "Réponds pong."}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("started")
async def test_call_model_returns_none_when_no_tier_answers(model: FakeOpenAI) -> None:
    config = local(model.url, model="fake-model", enabled=True, breaker_failures=10)
    model.set_fault("http500")

    assert await api.call_model("ça marche ?", config) is None
    assert len(completions(model)) == 1
    [call] = await rows(CascadeCall)
    assert (call.source, call.errors) == ("fallback", {"local": "HTTP500"})


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("started")
async def test_call_model_skips_an_llm_boot_detection_did_not_find() -> None:
    started = time.monotonic()

    assert await api.call_model("allô ?", local(closed_endpoint())) is None
    assert await api.call_model("toujours là ?", local(closed_endpoint())) is None
    assert time.monotonic() - started < 2.0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("started")
async def test_call_model_without_a_config_uses_the_projects_settings(
    model: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_ENDPOINT", model.url)

    assert await api.call_model("c'est quoi Python ?") == DEFAULT_ANSWER


@pytest.mark.django_db(transaction=True)
async def test_concurrent_first_calls_share_one_service(model: FakeOpenAI) -> None:
    config = local(model.url)
    try:
        answers = await asyncio.gather(*(api.call_model(f"question {i}", config) for i in range(5)))
    finally:
        await api.shutdown()

    assert answers == [DEFAULT_ANSWER] * 5
    assert len([r for r in model.requests if r.path.endswith("/models")]) == 1


def test_call_model_from_a_script(local_dir: Path, model: FakeOpenAI) -> None:
    script = (
        "import asyncio, django; django.setup()\n"
        "from llm.api import call_model\n"
        "print(asyncio.run(call_model(\"c'est quoi Python ?\", user='script')))\n"
    )
    result = manage(bot_env(local_dir, LLM_ENDPOINT=model.url), "shell", "-c", script)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == DEFAULT_ANSWER
    # Recorded before asyncio.run() returned.
    with sqlite3.connect(local_dir / "db.sqlite3") as db:
        calls = db.execute("SELECT platform, intent, source FROM llm_cascadecall").fetchall()
    assert calls == [("api", "ask", "local")]
