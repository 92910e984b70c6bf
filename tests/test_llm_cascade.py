"""The cascade against real HTTP servers on 127.0.0.1: local -> OpenAI -> nothing."""

from __future__ import annotations

import asyncio
import time
import zoneinfo
from collections.abc import Iterator
from datetime import datetime

import pytest

from llm.cascade.service import LLMService
from llm.models import CascadeCall, TierEvent, Usage
from tests.fakes.openai_server import FakeOpenAI
from tests.llm_helpers import DEADLINE, MARGIN, TIMEOUT, ask, llm_config, recorder, rows, service
from tests.subprocesses import closed_endpoint

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def local() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(answer="Un langage de programmation.") as server:
        yield server


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(answer="Réponse du cloud.") as server:
        yield server


async def test_it_answers_from_the_local_llm(local: FakeOpenAI) -> None:
    llm = service(llm_config(local.url))
    await llm.start(process="test")

    result = await ask(llm)
    await llm.stop()

    assert (result.text, result.source, result.attempted, result.errors) == (
        "Un langage de programmation.",
        "local",
        True,
        {},
    )
    sent = [r for r in local.requests if r.path.endswith("/chat/completions")]
    assert sent[-1].body["messages"] == [
        {"role": "system", "content": "Réponds court."},
        {"role": "user", "content": "c'est quoi Python ?"},
    ]
    [call] = await rows(CascadeCall)
    assert (call.source, call.intent, call.platform, call.errors) == ("local", "ask", "console", {})


async def test_history_reaches_every_tier(openai: FakeOpenAI) -> None:
    # The local tier gets the conversation and fails: the OpenAI tier gets the same one.
    with FakeOpenAI() as local:
        local.set_fault("http500")
        llm = service(llm_config(local.url, openai.url, mode="enabled"))
        await llm.start(process="test")

        result = await ask(llm, "et Rust ?", history=[("c'est quoi Python ?", "Un serpent qui code.")])
        await llm.stop()

    assert result.source == "openai"
    expected = [
        {"role": "system", "content": "Réponds court."},
        {"role": "user", "content": "c'est quoi Python ?"},
        {"role": "assistant", "content": "Un serpent qui code."},
        {"role": "user", "content": "et Rust ?"},
    ]
    for server in (local, openai):
        sent = [r for r in server.requests if r.path.endswith("/chat/completions") and not r.is_probe]
        assert sent[-1].body["messages"] == expected


async def test_it_uses_the_first_listed_model_when_none_is_configured() -> None:
    with FakeOpenAI(models=("qwen2.5-7b", "llama-3")) as local:
        llm = service(llm_config(local.url, model=""))
        detection = await llm.start(process="test")
        result = await ask(llm)
        await llm.stop()

    assert detection.model == "qwen2.5-7b"
    assert result.source == "local"
    assert local.requests[-1].body["model"] == "qwen2.5-7b"


async def test_a_refused_local_llm_hands_over_to_openai(openai: FakeOpenAI) -> None:
    llm = service(llm_config(closed_endpoint(), openai.url, mode="enabled"))
    await llm.start(process="test")

    result = await ask(llm)
    await llm.stop()

    assert (result.text, result.source) == ("Réponse du cloud.", "openai")
    assert result.errors == {"local": "ConnectError"}
    [call] = await rows(CascadeCall)
    assert (call.source, call.errors) == ("openai", {"local": "ConnectError"})


async def test_both_tiers_failing_gives_no_text_and_says_why() -> None:
    with FakeOpenAI() as openai:
        openai.set_fault("http503")
        llm = service(llm_config(closed_endpoint(), openai.url, mode="enabled"))
        await llm.start(process="test")
        result = await ask(llm)
        await llm.stop()

    assert (result.text, result.source, result.attempted, result.timed_out) == (None, "fallback", True, False)
    assert result.errors == {"local": "ConnectError", "openai": "HTTP503"}


async def test_a_hanging_server_is_cut_at_the_first_token_timeout(local: FakeOpenAI) -> None:
    llm = service(llm_config(local.url, deadline=30.0))
    await llm.start(process="test")
    local.set_fault("hang")

    started = time.monotonic()
    result = await ask(llm)
    took = time.monotonic() - started
    await llm.stop()

    assert (result.text, result.timed_out, result.attempted) == (None, True, True)
    assert result.errors == {"local": "FirstTokenTimeout"}
    assert TIMEOUT <= took < TIMEOUT + MARGIN


async def test_the_message_deadline_cuts_a_slow_tier_and_drops_the_late_answer(local: FakeOpenAI) -> None:
    llm = service(llm_config(local.url, timeout=10.0, deadline=0.5))
    await llm.start(process="test")
    local.set_fault("slow", delay=1.5)

    started = time.monotonic()
    result = await ask(llm)
    took = time.monotonic() - started
    await llm.stop()

    assert (result.text, result.source, result.timed_out) == (None, "fallback", True)
    assert result.errors == {"local": "Deadline"}
    assert took < 0.5 + MARGIN
    # Cut by the message's budget, not by its own timeout: the tier is not blamed for it.
    assert llm.states()["local"] == "up"


async def test_a_slow_answer_within_the_timeout_is_used(local: FakeOpenAI) -> None:
    llm = service(llm_config(local.url, timeout=2.0))
    await llm.start(process="test")
    local.set_fault("slow", delay=0.3)

    result = await ask(llm)
    await llm.stop()

    assert result.source == "local"


async def test_without_a_key_the_openai_tier_is_not_in_the_cascade() -> None:
    llm = service(llm_config(closed_endpoint(), mode="enabled", openai_api_key="sk-..."))
    await llm.start(process="test")

    result = await ask(llm)
    await llm.stop()

    assert result.errors == {"local": "ConnectError"}
    assert llm.states() == {"local": "down", "openai": "not_configured"}


async def test_disabled_mode_calls_no_model(local: FakeOpenAI, openai: FakeOpenAI) -> None:
    llm = service(llm_config(local.url, openai.url, mode="disabled"))
    await llm.start(process="test")

    result = await ask(llm)
    await llm.stop()

    assert (result.text, result.source, result.attempted) == (None, "fallback", False)
    assert local.total_requests == openai.total_requests == 0
    # Both tiers are configured: switched off, not "not configured".
    assert llm.states() == {"local": "disabled", "openai": "disabled"}
    events = [(e.tier, e.state, e.detail) for e in await rows(TierEvent)]
    assert events == [
        ("local", "disabled", "at start: LLM_MODE=disabled"),
        ("openai", "disabled", "at start: LLM_MODE=disabled"),
    ]
    [call] = await rows(CascadeCall)
    assert call.source == "fallback"


async def test_auto_mode_skips_a_local_llm_not_found_at_boot_without_a_network_call(
    local: FakeOpenAI,
) -> None:
    local.set_fault("http500")
    llm = service(llm_config(local.url, probe_interval=60.0))
    detection = await llm.start(process="test")
    seen = local.total_requests

    result = await ask(llm)
    await llm.stop()

    assert not detection.found
    assert (result.text, result.attempted, result.errors) == (None, False, {"local": "BreakerOpen"})
    assert local.total_requests == seen


async def test_enabled_mode_tries_the_local_llm_even_when_boot_detection_failed(local: FakeOpenAI) -> None:
    local.set_fault("http500")
    llm = service(llm_config(local.url, mode="enabled", probe_interval=60.0))
    detection = await llm.start(process="test")
    local.clear()

    result = await ask(llm)
    await llm.stop()

    assert not detection.found
    assert result.source == "local"


async def test_a_message_that_would_wait_past_its_deadline_for_a_slot_falls_back_at_once(
    local: FakeOpenAI,
) -> None:
    llm = service(
        llm_config(local.url, timeout=5.0, first_token_timeout=5.0, deadline=1.0, max_inflight_local=1)
    )
    await llm.start(process="test")
    local.set_fault("slow", delay=0.6)
    assert (await ask(llm)).source == "local"  # now the tier's answer time is known
    before = local.chat_requests

    first = asyncio.create_task(ask(llm))
    await asyncio.sleep(0.05)  # the first message holds the only slot
    started = time.monotonic()
    second = await ask(llm)
    waited = time.monotonic() - started
    await first
    await llm.stop()

    assert (second.text, second.attempted, second.errors) == (None, False, {"local": "Saturated"})
    assert waited < 0.2
    assert local.chat_requests == before + 1
    assert first.result().source == "local"


async def test_a_message_waits_for_a_slot_when_it_fits_in_its_deadline(local: FakeOpenAI) -> None:
    llm = service(llm_config(local.url, timeout=5.0, deadline=3.0, max_inflight_local=1))
    await llm.start(process="test")
    local.set_fault("slow", delay=0.3)

    results = await asyncio.gather(*(ask(llm) for _ in range(3)))
    await llm.stop()

    assert [r.source for r in results] == ["local"] * 3


async def test_answers_are_cleaned_to_one_line_within_the_limit(local: FakeOpenAI) -> None:
    local.answer = "<think>réfléchissons</think>Ligne un.\n\nLigne deux, assez longue pour être coupée ici."
    llm = service(llm_config(local.url))
    await llm.start(process="test")

    result = await ask(llm, max_chars=30)
    await llm.stop()

    assert result.text == "Ligne un. Ligne deux, assez…"


async def test_chat_text_is_stored_only_when_the_setting_asks(local: FakeOpenAI) -> None:
    quiet = service(llm_config(local.url), store_chat=False)
    chatty = service(llm_config(local.url), store_chat=True)
    for llm in (quiet, chatty):
        await llm.start(process="test")
        await ask(llm, "ma question", user="alice", channel="stream")
        await llm.stop()

    first, second = await rows(CascadeCall)
    assert (first.user, first.text, first.channel) == ("", "", "stream")
    assert (second.user, second.text) == ("alice", "ma question")


async def test_a_reply_never_takes_longer_than_the_deadline(local: FakeOpenAI) -> None:
    with FakeOpenAI() as openai:
        local.set_fault("hang")
        openai.set_fault("hang")
        llm = service(llm_config(local.url, openai.url, mode="enabled", timeout=5.0, deadline=DEADLINE))
        await llm.start(process="test")
        started = time.monotonic()
        result = await ask(llm)
        took = time.monotonic() - started
        await llm.stop()

    assert result.timed_out
    assert took < DEADLINE + MARGIN


class LocalClock:
    """The budget's local wall clock, moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


async def test_the_openai_tier_is_skipped_once_its_daily_budget_is_spent_until_midnight(
    openai: FakeOpenAI,
) -> None:
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    clock = LocalClock(datetime(2026, 12, 2, 14, 0, tzinfo=paris))
    config = llm_config(closed_endpoint(), openai.url, openai_daily_requests=2, probe_interval=60.0)
    llm = LLMService(config, recorder(), today=clock)
    await llm.start(process="test")

    answered = [await ask(llm) for _ in range(2)]
    reached = [await ask(llm) for _ in range(3)]
    state_at_limit = llm.states()["openai"]
    sent_today = openai.chat_requests
    clock.at = datetime(2026, 12, 3, 0, 0, 1, tzinfo=paris)  # the next local day
    next_day = await ask(llm)
    await llm.stop()

    assert [r.source for r in answered] == ["openai", "openai"]
    assert [(r.source, r.errors["openai"]) for r in reached] == [("fallback", "Budget")] * 3
    assert all(not r.attempted for r in reached)  # skipped with no network call: the intent's own phrases
    assert state_at_limit == "budget"
    assert sent_today == 2
    assert next_day.source == "openai"
    events = [(e.state, e.error) for e in await rows(TierEvent, tier="openai") if e.detail != "at start"]
    assert events == [("budget", "Budget"), ("up", "")]
    usage = await rows(Usage, tier="openai")
    assert len(usage) == 3
    assert all(u.reported and u.completion_tokens > 0 for u in usage)


async def test_probes_and_warm_ups_of_the_openai_tier_are_counted_and_stop_with_its_budget(
    openai: FakeOpenAI,
) -> None:
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    clock = LocalClock(datetime(2026, 12, 2, 23, 0, tzinfo=paris))
    config = llm_config(
        closed_endpoint(), openai.url, openai_daily_requests=3, probe_kind="completion", probe_interval=60.0
    )
    llm = LLMService(config, recorder(), today=clock)
    await llm.start(process="test")
    assert llm.openai is not None

    probed = await llm.monitor.probe(llm.openai)  # a 1-token completion: paid like any other
    answered = [await ask(llm) for _ in range(2)]
    state_at_limit = llm.states()["openai"]
    sent = completions(openai)
    probe_over = await llm.monitor.probe(llm.openai)
    warm_up_over = await llm.warmups.trigger(llm.openai)
    sent_over = completions(openai)
    clock.at = datetime(2026, 12, 3, 0, 0, 1, tzinfo=paris)
    state_after_midnight = llm.states()["openai"]  # before any message or probe asked
    probe_next_day = await llm.monitor.probe(llm.openai)
    await llm.stop()

    assert probed is not None and probed.ok and probed.kind == "completion"
    assert [r.source for r in answered] == ["openai", "openai"]
    assert state_at_limit == "budget"
    assert (probe_over, warm_up_over) == (None, None)
    assert sent == sent_over == 3  # the probe and two answers
    assert state_after_midnight == "up"
    assert probe_next_day is not None and probe_next_day.ok
    usage = await rows(Usage, tier="openai")
    assert len(usage) == 4  # the probe, two answers, the next day's probe
    events = [(e.state, e.error) for e in await rows(TierEvent, tier="openai") if e.detail != "at start"]
    assert events == [("budget", "Budget"), ("up", "")]  # the probe rolled the day over


def completions(server: FakeOpenAI) -> int:
    """Completion requests received: chat, probes and warm-ups alike."""
    return sum(1 for r in list(server.requests) if r.path.endswith("/chat/completions"))
