"""serdabot.outage.Outage: one line per outage and its end, capped backoff, on a test clock."""

from __future__ import annotations

import asyncio
import logging

import pytest

from serdabot.outage import RELAPSE, Outage, read_through

LOGGER = "tests.outage"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outage(clock: Clock) -> Outage:
    return Outage("loop", "Redis", logging.getLogger(LOGGER), first=0.2, cap=2.0, monotonic=clock)


def test_an_outage_is_said_once_and_its_end_once(
    outage: Outage, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(50):
            outage.failed(ConnectionRefusedError("refused"))
            clock.now += 1
        outage.recovered()
        outage.recovered()
    said = lines(caplog)
    assert len(said) == 2, said
    assert "cannot reach Redis (ConnectionRefusedError: refused)" in said[0]
    assert "Redis is back after 50.0 s (50 retries)" in said[1]
    assert outage.outages == 1 and not outage.ongoing


def test_the_delay_doubles_up_to_the_cap_however_long_the_outage(outage: Outage) -> None:
    delays = [outage.failed(OSError("down")) for _ in range(5000)]
    assert 0.16 <= delays[0] <= 0.2
    assert 0.32 <= delays[1] <= 0.4
    # Thousands of tries in (half an hour of Redis down at 2 s a try) never overflow the float.
    assert all(1.6 <= delay <= 2.0 for delay in delays[4:])


def test_a_failure_just_after_a_recovery_is_the_same_outage(
    outage: Outage, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        outage.failed(OSError("down"))
        clock.now += 5
        outage.recovered()
        clock.now += 1  # a stale pooled connection fails once, then works
        outage.failed(OSError("stale"))
        clock.now += 0.2
        outage.recovered()
    assert len(lines(caplog)) == 2, lines(caplog)
    assert outage.outages == 1


def test_a_relapse_that_lasts_is_a_new_outage_and_is_said(
    outage: Outage, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        outage.failed(OSError("down"))
        clock.now += 5
        outage.recovered()
        clock.now += 1
        for _ in range(int(RELAPSE) + 5):  # down again, for good this time
            outage.failed(OSError("down again"))
            clock.now += 1
        outage.recovered()
    said = lines(caplog)
    assert len(said) == 4, said
    assert "cannot reach Redis (OSError: down again)" in said[2]
    assert "is back after" in said[3]
    assert outage.outages == 2


def test_an_announced_outage_logs_only_its_end(
    outage: Outage, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        outage.failed(OSError("down"), announced=True)
        clock.now += 3
        outage.failed(OSError("down"))
        outage.recovered()
    said = lines(caplog)
    assert len(said) == 1 and "is back after 3.0 s" in said[0], said


async def test_read_through_retries_an_outage_and_says_it_once(caplog: pytest.LogCaptureFixture) -> None:
    failures = [ConnectionError("refused"), ConnectionError("refused")]

    async def read() -> str:
        if failures:
            raise failures.pop(0)
        return "message"

    outage = Outage("reader", "Redis", logging.getLogger(LOGGER), first=0.01, cap=0.01)
    assert await read_through(read, outage, (ConnectionError,)) == "message"
    said = lines(caplog)
    assert len(said) == 2 and "cannot reach Redis" in said[0] and "back after" in said[1]


async def test_read_through_ends_when_its_cancellation_comes_back_as_an_error() -> None:
    # redis-py turns the cancellation of a blocking read into its own TimeoutError.
    started = asyncio.Event()

    async def read() -> str:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise TimeoutError("read cancelled") from None
        return "never"

    outage = Outage("reader", "Redis", logging.getLogger(LOGGER))
    task = asyncio.create_task(read_through(read, outage, (TimeoutError,)))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
