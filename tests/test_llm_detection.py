"""Boot detection: once at start, at most 2 s, logged and recorded."""

from __future__ import annotations

import logging
import time

import pytest

from llm.models import BootDetection, Probe, TierEvent
from tests.fakes.openai_server import FakeOpenAI
from tests.llm_helpers import MARGIN, TEST_KEY, llm_config, rows, service
from tests.subprocesses import closed_endpoint

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="llm")


async def test_it_logs_and_records_a_found_llm(caplog: pytest.LogCaptureFixture) -> None:
    with FakeOpenAI(models=("smollm2", "other")) as local:
        llm = service(llm_config(local.url, model=""))
        result = await llm.start(process="chat")
        await llm.stop()

    assert (result.found, result.model) == (True, "smollm2")
    assert f"LLM found at {local.url} (model smollm2)" in caplog.text
    [boot] = await rows(BootDetection)
    assert (boot.mode, boot.found, boot.endpoint, boot.model, boot.process, boot.error) == (
        "auto",
        True,
        local.url,
        "smollm2",
        "chat",
        "",
    )
    [probe] = await rows(Probe, kind="boot")
    assert (probe.tier, probe.ok) == ("local", True)
    events = await rows(TierEvent)
    # The console run ends with its stop: its tiers' time ends in its history too (with shared
    # state, REDIS_URL, other processes may go on: nothing is said).
    stopped = [] if llm.shared else [("local", "stopped"), ("openai", "stopped")]
    assert [(e.tier, e.state) for e in events] == [("local", "up"), ("openai", "not_configured"), *stopped]


async def test_it_logs_and_records_a_missing_llm(caplog: pytest.LogCaptureFixture) -> None:
    endpoint = closed_endpoint()
    llm = service(llm_config(endpoint))
    result = await llm.start(process="runbot")
    await llm.stop()

    assert not result.found
    assert f"LLM not available at {endpoint} (ConnectError) -> fallback mode on" in caplog.text
    [boot] = await rows(BootDetection)
    assert (boot.found, boot.error, boot.process) == (False, "ConnectError", "runbot")
    [probe] = await rows(Probe, kind="boot")
    assert (probe.ok, probe.error) == (False, "ConnectError")
    events = await rows(TierEvent, tier="local")
    stopped = [] if llm.shared else [("stopped", "")]
    assert [(e.state, e.error) for e in events] == [("down", "ConnectError"), *stopped]
    assert llm.states()["local"] == "down"


async def test_it_says_openai_answers_next_when_a_key_is_set(caplog: pytest.LogCaptureFixture) -> None:
    llm = service(llm_config(closed_endpoint(), openai_api_key=TEST_KEY, openai_model="gpt-4o-mini"))
    await llm.start(process="test")
    await llm.stop()

    assert "-> OpenAI (gpt-4o-mini) then fallback phrases" in caplog.text
    assert TEST_KEY not in caplog.text


async def test_a_configured_model_the_server_does_not_list_is_not_found() -> None:
    with FakeOpenAI(models=("llama-3",)) as local:
        llm = service(llm_config(local.url, model="qwen2.5"))
        result = await llm.start(process="test")
        await llm.stop()

    assert (result.found, result.error) == (False, "ModelNotFound")


async def test_it_waits_at_most_two_seconds_for_a_hanging_server() -> None:
    with FakeOpenAI() as local:
        local.set_fault("hang")
        llm = service(llm_config(local.url, timeout=10.0, connect_timeout=10.0))
        started = time.monotonic()
        result = await llm.start(process="test")
        took = time.monotonic() - started
        await llm.stop()

    assert not result.found
    assert result.error in ("ReadTimeout", "Deadline")
    assert took < 2.0 + MARGIN


async def test_disabled_mode_asks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with FakeOpenAI() as local:
        llm = service(llm_config(local.url, mode="disabled"))
        result = await llm.start(process="test")
        await llm.stop()

    assert result.skipped and not result.found
    assert local.total_requests == 0
    assert "LLM_MODE=disabled: no model will be called" in caplog.text
    [boot] = await rows(BootDetection)
    assert (boot.mode, boot.found) == ("disabled", False)
    assert await rows(Probe) == []
