"""Streamed answers under LM Studio's real failures, against real HTTP servers on 127.0.0.1.

The failures the fault matrix cannot show in one message: `/models` answering while
completions hang, a model loaded on first use, a drip that never trips a read
timeout, an error body echoing the key, a lone surrogate in the answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator

import pytest

from llm.cascade.service import LLMService
from llm.cascade.slots import STUCK_FLOOR
from llm.models import CascadeCall, Probe, TierEvent
from tests.fakes.openai_server import FakeOpenAI
from tests.llm_helpers import MARGIN, TEST_KEY, TIMEOUT, ask, eventually, llm_config, rows, service

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def local() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(answer="Réponse locale.") as server:
        yield server


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(answer="Réponse du cloud.") as server:
        yield server


async def started(llm: LLMService) -> LLMService:
    await llm.start(process="test")
    return llm


async def test_models_up_while_completions_hang_costs_one_message_per_outage(
    local: FakeOpenAI, openai: FakeOpenAI
) -> None:
    # Default probe kind (GET /models), probes every 0.2 s, a warm-up that outlives the test.
    llm = await started(service(llm_config(local.url, openai.url, probe_kind="models", warmup_timeout=30.0)))
    local.set_fault("completions_hang")

    results = []
    for _ in range(12):  # spread over more than five probe intervals
        results.append(await ask(llm))
        await asyncio.sleep(0.1)
    models_probes = sum(1 for r in local.requests if r.path.endswith("/models"))
    states = llm.states()
    await llm.recorder.flush()

    assert [r.source for r in results] == ["openai"] * 12
    paid = [r for r in results if r.errors.get("local") == "FirstTokenTimeout"]
    assert len(paid) == 1
    assert {r.errors["local"] for r in results[1:]} == {"Warming"}
    assert models_probes >= 5  # /models kept answering, and closed nothing
    assert states["local"] == "warming"
    events = [(e.state, e.error) for e in await rows(TierEvent, tier="local") if e.detail != "at start"]
    assert events == [("warming", "FirstTokenTimeout")]

    # Completions work again: the warm-up in flight answers, and chat uses the tier at once.
    local.clear()
    answered = await eventually(lambda: _answered_by(llm, "local"), within=1.5, every=0.05)
    await llm.stop()
    assert answered.text == "Réponse locale."


async def test_messages_arriving_while_completions_hang_skip_the_tier_instead_of_queueing(
    local: FakeOpenAI, openai: FakeOpenAI
) -> None:
    # Chat as it comes: a message every 0.25 s, none waiting for the one before. The default
    # bound of 2 calls in flight; the first-token clock well past the 1 s that makes a call
    # without a first token look stuck.
    llm = await started(
        service(
            llm_config(
                local.url,
                openai.url,
                probe_kind="models",
                first_token_timeout=3.0,
                timeout=6.0,
                deadline=12.0,
                max_inflight_local=2,
                warmup_timeout=30.0,
            )
        )
    )
    local.set_fault("completions_hang")

    async def message(i: int):
        await asyncio.sleep(i * 0.25)
        began = time.monotonic()
        result = await ask(llm)
        return result, time.monotonic() - began

    answered = await asyncio.gather(*(message(i) for i in range(16)))
    await llm.stop()

    assert {result.source for result, _ in answered} == {"openai"}
    paid = [waited for result, waited in answered if result.errors["local"] == "FirstTokenTimeout"]
    assert len(paid) == 2  # the two calls already out when the hang began
    others = [
        (result.errors["local"], waited)
        for result, waited in answered
        if result.errors["local"] != "FirstTokenTimeout"
    ]
    # Skipped as stuck before the first-token clock told, then as warming.
    assert {error for error, _ in others} == {"Stuck", "Warming"}
    # None of the others waited for that clock (3 s), at most until the calls out looked stuck
    # (1 s after the first was sent).
    assert max(waited for _, waited in others) < STUCK_FLOOR + MARGIN
    assert local.peak_chat_in_flight == 2


async def test_a_model_loaded_on_first_use_is_warmed_up_without_a_viewer_waiting(
    local: FakeOpenAI, openai: FakeOpenAI
) -> None:
    local.set_fault("warmup")
    local.warmup_delay = 2.0
    begun = time.monotonic()
    llm = await started(service(llm_config(local.url, openai.url, warmup_timeout=10.0)))

    # Boot waited its detection time for the warm-up, then went on with the tier skipped.
    assert llm.states()["local"] == "warming"
    during = [await ask(llm) for _ in range(5)]
    assert [r.source for r in during] == ["openai"] * 5
    assert all(r.errors["local"] == "Warming" for r in during)
    assert local.chat_requests == 0

    answered = await eventually(lambda: _answered_by(llm, "local"), within=local.warmup_delay + 2, every=0.05)
    await llm.stop()
    assert answered.text == "Réponse locale."
    assert time.monotonic() - begun >= local.warmup_delay
    warmups = [p for p in await rows(Probe, tier="local") if p.kind == "completion"]
    assert warmups and warmups[-1].ok


async def test_a_warm_up_that_stalls_after_its_first_token_fails_on_the_stall_clock(
    local: FakeOpenAI,
) -> None:
    # Only the first token may take the warm-up's long timeout (a model being loaded).
    local.set_fault("stall")
    llm = await started(service(llm_config(local.url, warmup_timeout=30.0, probe_interval=60.0)))

    async def failed_warm_ups() -> list[Probe]:
        await llm.recorder.flush()
        return [p for p in await rows(Probe, tier="local") if p.kind == "completion" and not p.ok]

    failed = await eventually(failed_warm_ups, within=TIMEOUT + 3.0, every=0.1)
    await llm.stop()

    assert failed[0].error == "StallTimeout"
    assert llm.local.breaker.last_error == "StallTimeout"  # counted against the tier


async def test_a_model_unloaded_mid_stream_costs_one_message_then_comes_back(
    local: FakeOpenAI, openai: FakeOpenAI
) -> None:
    llm = await started(service(llm_config(local.url, openai.url, warmup_timeout=10.0, probe_interval=60.0)))
    assert (await ask(llm)).source == "local"
    local.set_fault("warmup")  # LM Studio unloaded the idle model: the next request reloads it
    local.warmup_delay = 1.5

    first = await ask(llm)
    then = [await ask(llm) for _ in range(3)]
    back = await eventually(lambda: _answered_by(llm, "local"), within=local.warmup_delay + 2, every=0.05)
    await llm.stop()

    assert (first.source, first.errors["local"]) == ("openai", "FirstTokenTimeout")
    assert [(r.source, r.errors["local"]) for r in then] == [("openai", "Warming")] * 3
    assert back.text == "Réponse locale."


async def test_a_dripping_local_server_leaves_openai_time_to_answer(
    local: FakeOpenAI, openai: FakeOpenAI
) -> None:
    llm = await started(service(llm_config(local.url, openai.url, timeout=30.0, deadline=15.0)))
    local.set_fault("drip")  # after boot: its warm-up would have found out and spared every message
    local.drip_interval = 0.05  # a byte every 50 ms: never a read timeout, never a whole chunk

    begun = time.monotonic()
    result = await ask(llm)
    took = time.monotonic() - begun
    await llm.stop()

    assert (result.source, result.text) == ("openai", "Réponse du cloud.")
    assert result.errors == {"local": "FirstTokenTimeout"}
    assert took < TIMEOUT + MARGIN  # the first-token clock, not the 30 s timeout nor the 15 s deadline
    assert [(t.tier, t.outcome) for t in result.tiers] == [("local", "timeout"), ("openai", "answered")]


async def test_a_slow_local_tier_gets_only_its_share_of_the_deadline(
    local: FakeOpenAI, openai: FakeOpenAI
) -> None:
    # Tokens keep coming (no clock fires) but the whole answer would take 4 s: past the local share.
    config = llm_config(
        local.url,
        openai.url,
        timeout=30.0,
        stall_timeout=5.0,
        deadline=2.0,
        local_share=0.5,
        probe_interval=60.0,
    )
    llm = await started(service(config))
    local.answer = " ".join(["mot"] * 8)
    local.chunk_delay = 0.4

    begun = time.monotonic()
    result = await ask(llm)
    took = time.monotonic() - begun
    await llm.stop()

    assert result.source == "openai"
    assert result.errors == {"local": "TooSlow"}
    assert 1.0 <= took < 1.0 + MARGIN  # 0.5 x 2 s for local, then OpenAI's fast answer
    assert llm.states()["local"] == "up"  # one slow answer is counted, not yet enough to open it


async def test_a_tier_always_slower_than_its_share_ends_up_skipped(
    local: FakeOpenAI, openai: FakeOpenAI
) -> None:
    config = llm_config(
        local.url,
        openai.url,
        timeout=30.0,
        stall_timeout=5.0,
        deadline=1.0,
        local_share=0.3,
        probe_interval=60.0,
    )
    llm = await started(service(config))
    local.answer = " ".join(["mot"] * 8)
    local.chunk_delay = 0.2

    results = [await ask(llm) for _ in range(5)]
    await llm.stop()

    assert [r.errors["local"] for r in results] == ["TooSlow"] * 3 + ["BreakerOpen"] * 2
    assert {r.source for r in results} == {"openai"}


async def test_the_message_deadline_cutting_the_last_tier_is_not_its_fault(local: FakeOpenAI) -> None:
    config = llm_config(local.url, timeout=30.0, stall_timeout=5.0, deadline=0.6, probe_interval=60.0)
    llm = await started(service(config))
    local.answer = " ".join(["mot"] * 8)
    local.chunk_delay = 0.2

    results = [await ask(llm) for _ in range(4)]
    await llm.stop()

    assert [r.errors["local"] for r in results] == ["Deadline"] * 4
    assert llm.states()["local"] == "up"


async def test_messages_queued_for_a_slot_skip_a_tier_that_failed_meanwhile(
    local: FakeOpenAI, openai: FakeOpenAI
) -> None:
    llm = await started(service(llm_config(local.url, openai.url, max_inflight_local=1, warmup_timeout=30.0)))
    local.set_fault("completions_hang")

    results = await asyncio.gather(*(ask(llm) for _ in range(6)))
    await llm.stop()

    paid = [r for r in results if r.errors.get("local") == "FirstTokenTimeout"]
    assert len(paid) == 1
    assert {r.source for r in results} == {"openai"}
    assert local.peak_chat_in_flight == 1


async def test_a_reasoning_model_thinking_before_it_answers_is_not_a_missing_first_token(
    local: FakeOpenAI,
) -> None:
    llm = await started(
        service(llm_config(local.url, timeout=5.0, first_token_timeout=0.3, stall_timeout=0.3))
    )
    local.reasoning = ["Hmm", ", voyons", "..."] * 3  # 9 chunks of thinking, 0.15 s apart: 1.35 s
    local.chunk_delay = 0.15

    result = await ask(llm)
    await llm.stop()

    assert result.source == "local"
    assert result.text == "Réponse locale."  # the thinking is not part of the answer
    assert result.first_token_ms is not None and result.first_token_ms < 300


async def test_the_time_to_first_token_is_recorded_per_call(local: FakeOpenAI) -> None:
    local.chunk_delay = 0.05
    llm = await started(service(llm_config(local.url)))

    result = await ask(llm)
    await llm.stop()

    assert result.source == "local"
    assert result.first_token_ms is not None and 50 <= result.first_token_ms < result.latency_ms
    [call] = await rows(CascadeCall)
    assert call.first_token_ms == result.first_token_ms
    assert call.fallback_intent == ""
    assert [t["tier"] for t in call.tiers] == ["local"]
    assert call.tiers[0]["outcome"] == "answered"


async def test_an_error_body_echoing_the_key_is_never_logged_nor_stored(
    openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    openai.set_fault("echo_key_401")
    with FakeOpenAI() as dead_local:
        dead_local.set_fault("refuse")
        llm = await started(service(llm_config(dead_local.url, openai.url)))
        with caplog.at_level(logging.DEBUG):
            result = await ask(llm)
            await llm.probe_all()
        await llm.stop()

    assert result.errors["openai"] == "HTTP401"
    assert any(TEST_KEY in r.authorization for r in openai.requests)  # the key did go out, and came back
    stored = [
        *(f"{e.error} {e.detail}" for e in await rows(TierEvent)),
        *(f"{p.error} {p.detail}" for p in await rows(Probe)),
        *(json.dumps(c.errors) for c in await rows(CascadeCall)),
    ]
    assert any("Incorrect API key" in text for text in stored)
    assert not any(TEST_KEY in text for text in stored)
    assert TEST_KEY not in caplog.text


async def test_a_lone_surrogate_in_the_answer_never_reaches_the_reply(local: FakeOpenAI) -> None:
    local.set_fault("surrogate")
    llm = await started(service(llm_config(local.url)))

    result = await ask(llm)
    await llm.stop()

    assert result.source == "local"
    assert result.text == "Voilà une réponse."
    result.text.encode("utf-8")  # would raise UnicodeEncodeError with a lone surrogate left


async def _answered_by(llm: LLMService, tier: str):
    result = await ask(llm)
    return result if result.source == tier else None
