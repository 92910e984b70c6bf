"""Background probes: an LLM that appears after boot is used from the next probe on."""

from __future__ import annotations

import pytest

from llm.models import Probe
from tests.fakes.openai_server import FakeOpenAI
from tests.llm_helpers import PROBE_INTERVAL, ask, eventually, llm_config, rows, service

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("kind", ["models", "completion"])
async def test_an_llm_started_after_the_bot_is_used_from_the_next_probe(kind: str) -> None:
    server = FakeOpenAI()
    server.start()
    server.set_fault("refuse")  # the port is known, nothing listens yet
    llm = service(llm_config(server.url, probe_kind=kind))
    try:
        detection = await llm.start(process="test")
        assert not detection.found
        assert (await ask(llm)).errors == {"local": "BreakerOpen"}

        server.clear()
        await eventually(lambda: llm.states()["local"] == "up", within=PROBE_INTERVAL + 1.0)
        result = await ask(llm)
    finally:
        await llm.stop()
        server.stop()

    assert result.source == "local"
    probes = await rows(Probe, tier="local")
    assert (probes[0].kind, probes[0].ok) == ("boot", False)
    # While down, a cheap GET /models; once it answers, a warm-up completion closes the breaker.
    first_ok = next(i for i, p in enumerate(probes) if p.ok)
    assert {p.kind for p in probes[1:first_ok]} <= {"models"}
    assert [p.kind for p in probes[first_ok : first_ok + 2]] == ["models", "completion"]
    assert all(p.ok for p in probes[first_ok:])
    assert kind in {p.kind for p in probes[first_ok + 2 :]} or len(probes) == first_ok + 2


async def test_a_models_probe_fails_when_the_configured_model_is_not_listed() -> None:
    with FakeOpenAI() as local:
        llm = service(llm_config(local.url, probe_kind="models"))
        await llm.start(process="test")
        local.set_fault("model_not_found")
        await eventually(lambda: llm.states()["local"] == "down", within=PROBE_INTERVAL + 1.0)
        await llm.stop()

    failed = [p for p in await rows(Probe, tier="local") if not p.ok]
    assert failed[0].error == "ModelNotFound"
    assert "fake-model" in failed[0].detail


async def test_a_models_answer_alone_never_brings_back_a_tier_whose_completions_fail() -> None:
    with FakeOpenAI() as local:
        llm = service(llm_config(local.url, probe_kind="models", breaker_failures=1))
        await llm.start(process="test")
        await llm.recorder.flush()
        booted = len(await rows(Probe, tier="local"))  # detection and the boot warm-up
        local.set_fault("http500")
        await ask(llm)
        assert llm.states()["local"] == "down"
        # /models answers again, completions still fail: probes and warm-ups keep it down.
        local.set_fault("empty_choices")
        await eventually(lambda: local.probe_requests >= 6, within=PROBE_INTERVAL * 10 + 1.0)
        state = llm.states()["local"]
        await llm.stop()

    assert state == "down"
    probes = (await rows(Probe, tier="local"))[booted:]
    assert any(p.kind == "models" and p.ok for p in probes)
    warmups = [p for p in probes if p.kind == "completion"]
    assert warmups and not any(p.ok for p in warmups)


async def test_a_cooling_tier_is_not_probed_until_its_retry_after_passed() -> None:
    with FakeOpenAI() as local:
        llm = service(llm_config(local.url))
        await llm.start(process="test")
        local.set_fault("rate_limit", retry_after="30")
        await ask(llm)
        assert llm.states()["local"] == "cooling"
        seen = local.total_requests

        await llm.probe_all()  # an explicit probe (llmstatus) still goes through...
        probes_before = local.probe_requests
        for _ in range(3):  # ...scheduled ones do not
            await llm.monitor.probe(llm.local)
        await llm.stop()

    assert local.total_requests == seen + 1
    assert local.probe_requests == probes_before
    assert llm.states()["local"] == "cooling"
