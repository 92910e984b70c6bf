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

from llm.models import CascadeCall, TierEvent
from llm.results import CascadeResult
from llm.service import LLMService
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

ERROR_CLASS = {
    "refuse": "ConnectError",
    "hang": "ReadTimeout",
    "slow": "ReadTimeout",
    "http500": "HTTP500",
    "http503": "HTTP503",
    "rate_limit": "RateLimited",
    "model_not_found": "ModelNotFound",
    "malformed_json": "MalformedJSON",
    "truncated": "RemoteProtocolError",
    "empty_choices": "EmptyChoices",
    "empty_content": "EmptyAnswer",
}
RETRY_AFTER = 1
THRESHOLD = 3


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
        config = llm_config(faulty.url, healthy.url, breaker_failures=THRESHOLD)
        instead = "openai"
    else:
        # Nothing listens for the local tier: boot detection marks it down and messages go to OpenAI.
        config = llm_config(closed_endpoint(), faulty.url, breaker_failures=THRESHOLD)
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


@pytest.mark.parametrize("fault", FAILING_FAULTS)
async def test_a_failing_tier_is_skipped_then_used_again(setup: Setup, fault: str) -> None:
    tier, llm, faulty = setup.tier, setup.llm, setup.faulty
    expected = ERROR_CLASS[fault]
    faulty.set_fault(fault, delay=TIMEOUT * 3, retry_after=str(RETRY_AFTER))

    # Until the breaker opens: each message pays the fault, bounded by the deadline.
    paid: list[CascadeResult] = []
    while llm.states()[tier] == "up":
        assert len(paid) < THRESHOLD, "the breaker should be open by now"
        result, took = await timed_ask(llm)
        assert took < DEADLINE + MARGIN
        assert result.source == setup.instead
        assert result.errors[tier] == expected
        paid.append(result)
    assert llm.states()[tier] == ("cooling" if fault == "rate_limit" else "down")
    assert all(r.timed_out == (fault in ("hang", "slow")) for r in paid if setup.instead == "fallback")

    # While open: replies at once, and not one chat request reaches the failing server.
    reached = faulty.chat_requests
    for _ in range(5):
        result, took = await timed_ask(llm)
        assert took < DEADLINE + MARGIN
        assert result.source == setup.instead
        assert result.errors[tier] == ("Cooling" if fault == "rate_limit" else "BreakerOpen")
    assert faulty.chat_requests == reached

    # The history has the error class, per message and as one incident.
    await llm.recorder.flush()
    calls = await rows(CascadeCall)
    assert [c.errors.get(tier) for c in calls[-5 - len(paid) : -5]] == [expected] * len(paid)
    assert {c.intent for c in calls} == {"ask"}
    assert {c.source for c in calls} == {setup.instead}
    events = [e for e in await rows(TierEvent, tier=tier) if e.detail != "at start"]
    assert [(e.state, e.error) for e in events] == [
        ("cooling" if fault == "rate_limit" else "down", expected)
    ]

    # The fault clears: the next probes bring the tier back.
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
