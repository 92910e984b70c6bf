"""One log line per outage, and capped backoff, for loops that must outlive what they read.

Every long-running loop (the worker's receive loop, the change listener, the dashboard
consumers, the history writer) wraps its dependency's calls the same way:

    outage = Outage("chat worker", "Redis", log)
    while True:
        try:
            message = await layer.receive(channel)
        except CONNECTION_ERRORS as exc:
            await asyncio.sleep(outage.failed(exc))
            continue
        outage.recovered()

The first failure logs a warning, the retries log nothing, and the first success after
them logs how long it lasted. Delays double from `first` up to `cap`: the cap is what
bounds how long after the dependency returns the loop notices.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from serdabot.redact import redact

T = TypeVar("T")

# Seconds after a recovery during which a new failure is the same outage's tail.
RELAPSE = 10.0

# What a lost Redis or database connection raises, across redis-py, asyncio and the OS.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError, TimeoutError, EOFError)


def connection_errors() -> tuple[type[BaseException], ...]:
    """CONNECTION_ERRORS plus redis-py's and Django's own, when they are installed."""
    errors: list[type[BaseException]] = list(CONNECTION_ERRORS)
    try:
        import redis.exceptions

        errors += [
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            redis.exceptions.BusyLoadingError,
        ]
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    try:
        from django.db import InterfaceError, OperationalError

        errors += [OperationalError, InterfaceError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def being_cancelled() -> bool:
    """True when the running task is being cancelled, even if the cancellation was turned
    into another error on the way: redis-py turns a cancelled read into its own
    TimeoutError, which a retry loop would otherwise take for an outage and never end."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Outage:
    def __init__(
        self,
        who: str,
        what: str,
        logger: logging.Logger,
        *,
        first: float = 0.2,
        cap: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.who, self.what = who, what
        self.log = logger
        self.first, self.cap = first, cap
        self._monotonic = monotonic
        self.failures = 0  # consecutive, in the current outage
        self.outages = 0  # since the start
        self._since = 0.0
        self._relapse = False  # this failure run is the tail of the last outage
        self._back_at = -RELAPSE

    @property
    def ongoing(self) -> bool:
        return self.failures > 0

    def failed(self, exc: BaseException, *, announced: bool = False) -> float:
        """Count a failure; the seconds to wait before the next try (jittered, capped).

        `announced`: the caller already told the operator about this outage in words of
        its own, so its first failure logs nothing here (its end still does).
        """
        now = self._monotonic()
        if self.failures == 0:
            # A dependency that just came back may fail once more (a pool still holding
            # connections from before a restart): the same outage, not a new line.
            self._relapse = now - self._back_at < RELAPSE
            self._since = now
            if not self._relapse:
                self.outages += 1
                if not announced:
                    self._warn(exc)
        elif self._relapse and now - self._since >= RELAPSE:
            # Failing for longer than a stale pool could explain: a new outage after all,
            # which must be said (and its end too), however soon after the last it came.
            self._relapse = False
            self.outages += 1
            self._warn(exc)
        self.failures += 1
        # The exponent is bounded: 2.0 ** 1025 overflows, and an outage can outlast that many tries.
        delay = min(self.first * 2 ** min(self.failures - 1, 32), self.cap)
        return delay * random.uniform(0.8, 1.0)

    def _warn(self, exc: BaseException) -> None:
        self.log.warning(
            "%s: cannot reach %s (%s); retrying until it is back", self.who, self.what, describe(exc)
        )

    def recovered(self) -> None:
        if self.failures and self._relapse:
            self.failures = 0
        if self.failures:
            self._back_at = self._monotonic()
            self.log.warning(
                "%s: %s is back after %.1f s (%d retries)",
                self.who,
                self.what,
                self._monotonic() - self._since,
                self.failures,
            )
            self.failures = 0


def describe(exc: BaseException) -> str:
    """The error's class and first line, short: never a traceback for an expected outage."""
    text = redact(str(exc).strip().splitlines()[0])[:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def send_once_more(
    send: Callable[[str, dict[str, Any]], Awaitable[None]], channel: str, data: dict[str, Any]
) -> None:
    """A layer send (or group_send), tried once more on a connection error: after a Redis
    restart a pool's first connection is a dead one, and only the second try gets a fresh one."""
    try:
        await send(channel, data)
    except connection_errors():
        await send(channel, data)


async def read_through(
    read: Callable[[], Awaitable[T]], outage: Outage, errors: tuple[type[BaseException], ...]
) -> T:
    """`read()`, retried with `outage`'s backoff and one line per outage for as long as it
    raises one of `errors`. A cancellation redis-py turned into an error of its own still
    ends it: a retry would take it for an outage and never stop."""
    while True:
        try:
            value = await read()
        except asyncio.CancelledError:
            raise
        except errors as exc:
            if being_cancelled():
                raise asyncio.CancelledError from exc
            await asyncio.sleep(outage.failed(exc))
            continue
        outage.recovered()
        return value
