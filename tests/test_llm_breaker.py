"""The circuit breaker on its own, with a clock the test moves."""

from __future__ import annotations

import logging

import pytest

from llm.breaker import CircuitBreaker, StateChange


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


@pytest.fixture
def breaker(clock: Clock, changes: list[StateChange]) -> CircuitBreaker:
    return CircuitBreaker(
        "local",
        failure_threshold=3,
        cooldown=60.0,
        retry_after_default=30.0,
        clock=clock,
        listener=changes.append,
    )


def test_it_opens_after_the_threshold_of_consecutive_failures(
    breaker: CircuitBreaker, changes: list[StateChange]
) -> None:
    breaker.record_failure("ReadTimeout")
    breaker.record_failure("ReadTimeout")
    assert breaker.state == "up"
    assert breaker.admit().allowed

    breaker.record_failure("ReadTimeout", detail="no answer")

    assert breaker.state == "down"
    assert not breaker.admit().allowed
    assert breaker.admit().reason == "BreakerOpen"
    assert changes == [StateChange("local", "down", "up", "ReadTimeout", "no answer")]


def test_a_success_resets_the_count(breaker: CircuitBreaker) -> None:
    breaker.record_failure("HTTP500")
    breaker.record_failure("HTTP500")
    breaker.record_success()
    breaker.record_failure("HTTP500")
    breaker.record_failure("HTTP500")

    assert breaker.state == "up"


def test_a_models_probe_does_not_reset_the_count_of_failed_answers(breaker: CircuitBreaker) -> None:
    breaker.record_failure("EmptyChoices")
    breaker.record_failure("EmptyChoices")
    breaker.record_success(probe=True)
    breaker.record_failure("EmptyChoices")

    assert breaker.state == "down"


def test_a_failure_retrying_will_not_fix_opens_it_at_once(breaker: CircuitBreaker) -> None:
    breaker.record_failure("ConnectError", opens_at_once=True)

    assert breaker.state == "down"


def test_a_successful_probe_closes_it(breaker: CircuitBreaker, changes: list[StateChange]) -> None:
    breaker.record_failure("ConnectError", opens_at_once=True)

    breaker.record_success(probe=True, detail="probe ok")

    assert breaker.state == "up"
    assert breaker.admit().allowed
    assert [(c.previous, c.state) for c in changes] == [("up", "down"), ("down", "up")]


def test_after_the_cooldown_one_trial_message_goes_through(breaker: CircuitBreaker, clock: Clock) -> None:
    breaker.record_failure("ConnectError", opens_at_once=True)
    clock.now += 59.9
    assert not breaker.admit().allowed

    clock.now += 0.1
    trial = breaker.admit()

    assert trial.allowed and trial.trial
    assert not breaker.admit().allowed  # only one trial at a time
    assert breaker.state == "down"


def test_a_successful_trial_closes_it(breaker: CircuitBreaker, clock: Clock) -> None:
    breaker.record_failure("ConnectError", opens_at_once=True)
    clock.now += 60
    assert breaker.admit().trial

    breaker.record_success(trial=True)

    assert breaker.state == "up"


def test_a_failed_trial_opens_it_for_another_cooldown(
    breaker: CircuitBreaker, clock: Clock, changes: list[StateChange]
) -> None:
    breaker.record_failure("ConnectError", opens_at_once=True)
    clock.now += 60
    assert breaker.admit().trial

    breaker.record_failure("ReadTimeout", trial=True)

    assert not breaker.admit().allowed
    clock.now += 60
    assert breaker.admit().trial
    assert len(changes) == 1  # still the same incident: down once


def test_a_trial_that_never_ran_lets_the_next_message_try(breaker: CircuitBreaker, clock: Clock) -> None:
    breaker.record_failure("ConnectError", opens_at_once=True)
    clock.now += 60
    assert breaker.admit().trial

    breaker.release_trial()

    assert breaker.admit().trial


def test_a_429_cools_the_tier_for_its_retry_after(
    breaker: CircuitBreaker, clock: Clock, changes: list[StateChange]
) -> None:
    breaker.record_failure("RateLimited", rate_limited=True, retry_after=20.0)

    assert breaker.state == "cooling"
    assert breaker.admit().reason == "Cooling"
    assert not breaker.admits_probe()
    clock.now += 19.9
    assert breaker.state == "cooling"
    clock.now += 0.1
    assert breaker.state == "up"
    assert breaker.admit().allowed
    assert [(c.state, c.error) for c in changes] == [("cooling", "RateLimited"), ("up", "")]


def test_a_429_without_retry_after_cools_for_the_default(breaker: CircuitBreaker, clock: Clock) -> None:
    breaker.record_failure("RateLimited", rate_limited=True)

    clock.now += 29.9
    assert breaker.state == "cooling"
    clock.now += 0.1
    assert breaker.state == "up"


def test_state_changes_are_logged_once_not_per_message(
    breaker: CircuitBreaker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llm.breaker")
    breaker.record_failure("ConnectError", opens_at_once=True)
    for _ in range(50):
        breaker.admit()
        breaker.record_failure("ConnectError", opens_at_once=True)
    breaker.record_success(probe=True)

    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "local LLM is down (ConnectError" in messages[0]
    assert "local LLM is up again" in messages[1]


def test_a_listener_that_fails_does_not_break_the_breaker(clock: Clock) -> None:
    def explode(change: StateChange) -> None:
        raise RuntimeError("boom")

    breaker = CircuitBreaker("openai", clock=clock, listener=explode)
    breaker.record_failure("HTTP401", opens_at_once=True)

    assert breaker.state == "down"


def test_boot_detection_can_mark_it_down_without_an_incident(
    breaker: CircuitBreaker, changes: list[StateChange]
) -> None:
    breaker.force_open("ConnectError", notify=False)

    assert breaker.state == "down"
    assert changes == []
