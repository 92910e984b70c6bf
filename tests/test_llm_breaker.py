"""The circuit breaker on its own, with a clock the test moves.

Every test runs twice: with the state in this process (`LocalStore`) and in Redis
(`RedisStore`, what several workers share).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import pytest

from llm.cascade.breaker import BreakerStore, CircuitBreaker, LocalStore, StateChange
from llm.cascade.shared import RedisStore, SharedRedis
from tests.services import redis_url


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def changes() -> list[StateChange]:
    return []


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[BreakerStore]:
    if request.param == "memory":
        yield LocalStore()
        return
    shared = SharedRedis(redis_url())
    redis_store = RedisStore(shared, f"serdabot:llm:test:{uuid.uuid4().hex}")
    yield redis_store
    await shared.client.delete(redis_store.key)
    await shared.aclose()


@pytest.fixture
def breaker(clock: Clock, changes: list[StateChange], store: BreakerStore) -> CircuitBreaker:
    return CircuitBreaker(
        "local",
        failure_threshold=3,
        cooldown=60.0,
        retry_after_default=30.0,
        clock=clock,
        listener=changes.append,
        store=store,
    )


async def test_it_opens_after_the_threshold_of_consecutive_failures(
    breaker: CircuitBreaker, changes: list[StateChange]
) -> None:
    await breaker.record_failure("ReadTimeout")
    await breaker.record_failure("ReadTimeout")
    assert await breaker.current() == "up"
    assert (await breaker.admit()).allowed

    await breaker.record_failure("ReadTimeout", detail="no answer")

    assert await breaker.current() == "down"
    assert not (await breaker.admit()).allowed
    assert (await breaker.admit()).reason == "BreakerOpen"
    assert changes == [StateChange("local", "down", "up", "ReadTimeout", "no answer")]


async def test_a_success_resets_the_count(breaker: CircuitBreaker) -> None:
    await breaker.record_failure("HTTP500")
    await breaker.record_failure("HTTP500")
    await breaker.record_success()
    await breaker.record_failure("HTTP500")
    await breaker.record_failure("HTTP500")

    assert await breaker.current() == "up"


async def test_a_models_probe_does_not_reset_the_count_of_failed_answers(breaker: CircuitBreaker) -> None:
    await breaker.record_failure("EmptyChoices")
    await breaker.record_failure("EmptyChoices")
    await breaker.record_success(completion=False)
    await breaker.record_failure("EmptyChoices")

    assert await breaker.current() == "down"


async def test_a_failure_retrying_will_not_fix_opens_it_at_once(breaker: CircuitBreaker) -> None:
    await breaker.record_failure("ConnectError", opens_at_once=True)

    assert await breaker.current() == "down"


async def test_a_models_answer_never_closes_it(breaker: CircuitBreaker, changes: list[StateChange]) -> None:
    await breaker.record_failure("FirstTokenTimeout", opens_at_once=True)

    for _ in range(5):
        await breaker.record_success(completion=False, detail="GET /models ok")

    assert await breaker.current() == "down"
    assert not (await breaker.admit()).allowed
    assert [(c.previous, c.state) for c in changes] == [("up", "down")]


async def test_a_completion_that_works_closes_it(breaker: CircuitBreaker, changes: list[StateChange]) -> None:
    await breaker.record_failure("ConnectError", opens_at_once=True)

    await breaker.record_success(detail="probe ok")

    assert await breaker.current() == "up"
    assert (await breaker.admit()).allowed
    assert [(c.previous, c.state) for c in changes] == [("up", "down"), ("down", "up")]


async def test_a_missing_first_token_warms_the_tier_up_once(
    breaker: CircuitBreaker, changes: list[StateChange]
) -> None:
    await breaker.record_failure("FirstTokenTimeout")

    assert await breaker.start_warmup(120.0, skip_meanwhile=True)
    assert not await breaker.start_warmup(120.0, skip_meanwhile=True)  # one warm-up at a time

    assert await breaker.current() == "warming"
    assert (await breaker.admit()).reason == "Warming"
    await breaker.record_success(warmup=True, detail="warm-up answered")
    assert await breaker.current() == "up"
    assert [(c.state, c.error) for c in changes] == [("warming", "FirstTokenTimeout"), ("up", "")]


async def test_a_warm_up_that_fails_opens_it(breaker: CircuitBreaker) -> None:
    assert await breaker.start_warmup(120.0, skip_meanwhile=True)

    await breaker.record_failure("FirstTokenTimeout", warmup=True)

    assert await breaker.current() == "down"
    assert await breaker.start_warmup(120.0, skip_meanwhile=False)  # the slot is free again


async def test_a_warm_up_whose_worker_died_leaves_the_tier_down(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    assert await breaker.start_warmup(10.0, skip_meanwhile=True)

    clock.now += 10.0

    assert await breaker.current() == "down"
    assert breaker.last_error == ""  # not a failure of the tier's own: the incident says why
    assert await breaker.start_warmup(10.0, skip_meanwhile=False)


async def test_a_warm_up_abandoned_by_a_stopping_worker_leaves_the_tier_down_for_the_others(
    breaker: CircuitBreaker, changes: list[StateChange]
) -> None:
    await breaker.record_failure("FirstTokenTimeout")
    assert await breaker.start_warmup(120.0, skip_meanwhile=True)

    await breaker.abandon_warmup()

    # Completions never answered: chat must not be sent back to a tier that may still hang.
    assert await breaker.current() == "down"
    assert (await breaker.admit()).reason == "BreakerOpen"
    assert [(c.state, c.error) for c in changes] == [
        ("warming", "FirstTokenTimeout"),
        ("down", "WarmupAbandoned"),
    ]
    assert await breaker.start_warmup(120.0, skip_meanwhile=False)  # another worker may warm it up


async def test_abandoning_a_warm_up_of_a_tier_already_down_changes_nothing_else(
    breaker: CircuitBreaker, changes: list[StateChange]
) -> None:
    await breaker.record_failure("ConnectError", opens_at_once=True)
    assert await breaker.start_warmup(120.0, skip_meanwhile=False)

    await breaker.abandon_warmup()

    assert await breaker.current() == "down"
    assert [c.state for c in changes] == ["down"]
    assert await breaker.start_warmup(120.0, skip_meanwhile=False)


async def test_no_trial_message_while_a_warm_up_is_out(breaker: CircuitBreaker, clock: Clock) -> None:
    await breaker.record_failure("ConnectError", opens_at_once=True)
    assert await breaker.start_warmup(300.0, skip_meanwhile=False)

    clock.now += 120.0

    assert (await breaker.admit()).reason == "BreakerOpen"
    await breaker.record_failure("FirstTokenTimeout", warmup=True)
    assert (await breaker.admit()).reason == "BreakerOpen"  # a failed warm-up restarts the cool-down
    clock.now += 60.0
    assert (await breaker.admit()).trial


async def test_a_trial_whose_worker_died_lets_another_message_try(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    await breaker.record_failure("ConnectError", opens_at_once=True)
    clock.now += 60
    assert (await breaker.admit()).trial

    clock.now += 61  # the trial lease ran out without a word from that message

    assert (await breaker.admit()).trial


async def test_after_the_cooldown_one_trial_message_goes_through(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    await breaker.record_failure("ConnectError", opens_at_once=True)
    clock.now += 59.9
    assert not (await breaker.admit()).allowed

    clock.now += 0.1
    trial = await breaker.admit()

    assert trial.allowed and trial.trial
    assert not (await breaker.admit()).allowed  # only one trial at a time
    assert await breaker.current() == "down"


async def test_a_successful_trial_closes_it(breaker: CircuitBreaker, clock: Clock) -> None:
    await breaker.record_failure("ConnectError", opens_at_once=True)
    clock.now += 60
    assert (await breaker.admit()).trial

    await breaker.record_success(trial=True)

    assert await breaker.current() == "up"


async def test_a_failed_trial_opens_it_for_another_cooldown(
    breaker: CircuitBreaker, clock: Clock, changes: list[StateChange]
) -> None:
    await breaker.record_failure("ConnectError", opens_at_once=True)
    clock.now += 60
    assert (await breaker.admit()).trial

    await breaker.record_failure("ReadTimeout", trial=True)

    assert not (await breaker.admit()).allowed
    clock.now += 60
    assert (await breaker.admit()).trial
    assert len(changes) == 1  # still the same incident: down once


async def test_a_trial_that_never_ran_lets_the_next_message_try(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    await breaker.record_failure("ConnectError", opens_at_once=True)
    clock.now += 60
    assert (await breaker.admit()).trial

    await breaker.release_trial()

    assert (await breaker.admit()).trial


async def test_a_429_cools_the_tier_for_its_retry_after(
    breaker: CircuitBreaker, clock: Clock, changes: list[StateChange]
) -> None:
    await breaker.record_failure("RateLimited", rate_limited=True, retry_after=20.0)

    assert await breaker.current() == "cooling"
    assert (await breaker.admit()).reason == "Cooling"
    assert not breaker.admits_probe()
    clock.now += 19.9
    assert await breaker.current() == "cooling"
    clock.now += 0.1
    assert await breaker.current() == "up"
    assert (await breaker.admit()).allowed
    assert [(c.state, c.error) for c in changes] == [("cooling", "RateLimited"), ("up", "")]


async def test_a_429_without_retry_after_cools_for_the_default(breaker: CircuitBreaker, clock: Clock) -> None:
    await breaker.record_failure("RateLimited", rate_limited=True)

    clock.now += 29.9
    assert await breaker.current() == "cooling"
    clock.now += 0.1
    assert await breaker.current() == "up"


async def test_state_changes_are_logged_once_not_per_message(
    breaker: CircuitBreaker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llm.breaker")
    await breaker.record_failure("ConnectError", opens_at_once=True)
    for _ in range(50):
        await breaker.admit()
        await breaker.record_failure("ConnectError", opens_at_once=True)
    await breaker.record_success()

    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "local LLM is down (ConnectError" in messages[0]
    assert "local LLM is up again" in messages[1]


async def test_a_listener_that_fails_does_not_break_the_breaker(clock: Clock) -> None:
    def explode(change: StateChange) -> None:
        raise RuntimeError("boom")

    breaker = CircuitBreaker("openai", clock=clock, listener=explode)
    await breaker.record_failure("HTTP401", opens_at_once=True)

    assert await breaker.current() == "down"


async def test_boot_detection_can_mark_it_down_without_an_incident(
    breaker: CircuitBreaker, changes: list[StateChange]
) -> None:
    await breaker.force_open("ConnectError", notify=False)

    assert await breaker.current() == "down"
    assert changes == []
