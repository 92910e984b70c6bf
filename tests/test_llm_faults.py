"""The fault matrix: every fault of the fake server, on the local tier and on the OpenAI tier.

For each: a reply within the deadline plus a small margin with the right source; the
history names the error class; while the breaker is open no chat request reaches the
failing server; once the fault clears the tier answers again within one probe interval.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from llm.cascade.results import CascadeResult
from llm.cascade.service import LLMService
from llm.models import CascadeCall, TierEvent
from tests.fakes.openai_server import CONTENT_FAULTS, FAILING_FAULTS, FakeOpenAI
from tests.llm_helpers import (
    DEADLINE,
    MARGIN,
    PROBE_INTERVAL,
    TIMEOUT,
    ask,
    eventually,
    llm_config,
    rows,
    service,
)
from tests.subprocesses import closed_endpoint

pytestmark = pytest.mark.django_db(transaction=True)

# fault -> (error class, state once the tier is known bad, messages that pay before that)
THRESHOLD = 3
EXPECTED = {
    "refuse": ("ConnectError", "down", 1),
    # No first token: the tier is skipped at once while one warm-up completion finds out why.
    "hang": ("FirstTokenTimeout", "warming", 1),
    "completions_hang": ("FirstTokenTimeout", "warming", 1),
    "slow": ("FirstTokenTimeout", "warming", 1),
    "drip": ("FirstTokenTimeout", "warming", 1),
    "stall": ("StallTimeout", "down", THRESHOLD),
    "http500": ("HTTP500", "down", THRESHOLD),
    "http503": ("HTTP503", "down", THRESHOLD),
    "rate_limit": ("RateLimited", "cooling", 1),
    "model_not_found": ("ModelNotFound", "down", 1),
    "echo_key_401": ("HTTP401", "down", 1),
    "malformed_json": ("MalformedJSON", "down", THRESHOLD),
    "truncated": ("Truncated", "down", THRESHOLD),
    "empty_choices": ("EmptyChoices", "down", THRESHOLD),
    "empty_content": ("EmptyAnswer", "down", THRESHOLD),
}
SKIPPED_BECAUSE = {"down": "BreakerOpen", "cooling": "Cooling", "warming": "Warming"}
# `warmup` recovers by itself: tests/test_llm_streaming.py covers it.
MATRIX = tuple(f for f in FAILING_FAULTS if f != "warmup")
RETRY_AFTER = 1
WARMUP_TIMEOUT = 3.0


@dataclass
class Setup:
    tier: str
    llm: LLMService
    faulty: FakeOpenAI
    # Who answers while the faulty tier cannot: OpenAI behind a failing local tier,
    # nobody (a fallback phrase) behind a failing OpenAI tier.
    instead: str


@pytest.fixture(params=["local", "openai"])
def tier(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def servers() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    with FakeOpenAI() as first, FakeOpenAI() as second:
        yield first, second


@pytest.fixture
async def setup(tier: str, servers: tuple[FakeOpenAI, FakeOpenAI]) -> Setup:
    faulty, healthy = servers
    if tier == "local":
        config = llm_config(
            faulty.url, healthy.url, breaker_failures=THRESHOLD, warmup_timeout=WARMUP_TIMEOUT
        )
        instead = "openai"
    else:
        # Nothing listens for the local tier: boot detection marks it down and messages go to OpenAI.
        config = llm_config(
            closed_endpoint(), faulty.url, breaker_failures=THRESHOLD, warmup_timeout=WARMUP_TIMEOUT
        )
        instead = "fallback"
    llm = service(config)
    await llm.start(process="test")
    # The fault's first messages must meet a closed breaker: probes resume for the recovery.
    await llm.monitor.stop()
    return Setup(tier, llm, faulty, instead)


async def timed_ask(llm: LLMService) -> tuple[CascadeResult, float]:
    started = time.monotonic()
    result = await ask(llm)
    return result, time.monotonic() - started


@pytest.mark.parametrize("fault", MATRIX)
async def test_a_failing_tier_is_skipped_then_used_again(setup: Setup, fault: str) -> None:
    tier, llm, faulty = setup.tier, setup.llm, setup.faulty
    expected, bad_state, pays = EXPECTED[fault]
    faulty.set_fault(fault, delay=TIMEOUT * 3, retry_after=str(RETRY_AFTER))
    faulty.drip_interval = TIMEOUT / 5

    # Until the tier is known bad: each message pays the fault, bounded by the deadline.
    paid: list[CascadeResult] = []
    while llm.states()[tier] == "up":
        assert len(paid) < pays, "the tier should be skipped by now"
        result, took = await timed_ask(llm)
        assert took < DEADLINE + MARGIN
        assert result.source == setup.instead
        assert result.errors[tier] == expected
        paid.append(result)
    assert len(paid) == pays
    assert llm.states()[tier] == bad_state
    timeouts = fault in ("hang", "completions_hang", "slow", "drip", "stall")
    assert all(r.timed_out == timeouts for r in paid if setup.instead == "fallback")
    outcome = "timeout" if timeouts else "failed"
    assert [t.outcome for r in paid for t in r.tiers if t.tier == tier] == [outcome] * pays

    # While it is skipped: replies at once, and not one chat request reaches the failing server.
    reached = faulty.chat_requests
    for _ in range(5):
        result, took = await timed_ask(llm)
        assert took < DEADLINE + MARGIN
        assert result.source == setup.instead
        assert result.errors[tier] == SKIPPED_BECAUSE[bad_state]
        assert [t.outcome for t in result.tiers if t.tier == tier] == ["skipped"]
    assert faulty.chat_requests == reached

    # The history has the error class, per message and as one incident.
    await llm.recorder.flush()
    calls = await rows(CascadeCall)
    assert [c.errors.get(tier) for c in calls[-5 - len(paid) : -5]] == [expected] * len(paid)
    assert {c.intent for c in calls} == {"ask"}
    assert {c.source for c in calls} == {setup.instead}
    events = [e for e in await rows(TierEvent, tier=tier) if e.detail != "at start"]
    assert [(e.state, e.error) for e in events][:1] == [(bad_state, expected)]

    # The fault clears: the next probes (and warm-ups) bring the tier back.
    faulty.clear()
    llm.monitor.start()
    started = time.monotonic()
    wait = PROBE_INTERVAL + 1.0 + (RETRY_AFTER if fault == "rate_limit" else 0)
    answered = await eventually(lambda: _answered_by(llm, tier), within=wait, every=0.05)
    assert answered.text
    assert time.monotonic() - started < wait
    await llm.stop()
    events = [e for e in await rows(TierEvent, tier=tier) if e.detail != "at start"]
    assert events[-1].state == "up"


async def _answered_by(llm: LLMService, tier: str) -> CascadeResult | None:
    result = await ask(llm)
    return result if result.source == tier else None


@pytest.mark.parametrize("fault", CONTENT_FAULTS)
async def test_a_tier_answering_badly_shaped_text_still_answers_cleanly(setup: Setup, fault: str) -> None:
    setup.faulty.set_fault(fault)

    result, took = await timed_ask(setup.llm)
    await setup.llm.stop()

    assert took < DEADLINE + MARGIN
    assert result.source == setup.tier
    assert result.text is not None
    assert "\n" not in result.text
    assert 0 < len(result.text) <= 500
    if fault == "length":
        assert result.text == "Python est un langage."
    if fault == "multi_line":
        assert result.text == "Première ligne. Deuxième ligne. - un point - un autre point"
    if fault == "over_long":
        assert result.text.endswith("…")
        assert result.text[:-1].split()[-1].startswith("mot")  # cut between words
    assert setup.llm.states()[setup.tier] == "up"
