"""A circuit breaker per tier: stop sending chat to a tier that is known to fail.

closed (up) --N consecutive failures, or one that retrying will not fix--> open (down)
open --a successful probe--> closed
open --cool-down elapsed--> half-open: one trial message; success closes, failure re-opens
any --429--> cooling for Retry-After (or a default), then closed

Only changes of the public state (up/down/cooling) are logged and reported to the
listener, so an outage is one incident, not one line per message.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("llm.breaker")


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    COOLING = "cooling"


_PUBLIC = {
    BreakerState.CLOSED: "up",
    BreakerState.OPEN: "down",
    BreakerState.HALF_OPEN: "down",
    BreakerState.COOLING: "cooling",
}


@dataclass(frozen=True, slots=True)
class StateChange:
    tier: str
    state: str  # "up", "down" or "cooling"
    previous: str
    error: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    trial: bool = False
    reason: str = ""  # why the tier is skipped: "BreakerOpen" or "Cooling"


GO = Admission(allowed=True)
TRIAL = Admission(allowed=True, trial=True)
SKIP_OPEN = Admission(allowed=False, reason="BreakerOpen")
SKIP_COOLING = Admission(allowed=False, reason="Cooling")


class CircuitBreaker:
    def __init__(
        self,
        tier: str,
        *,
        failure_threshold: int = 3,
        cooldown: float = 60.0,
        retry_after_default: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        listener: Callable[[StateChange], None] | None = None,
    ) -> None:
        self.tier = tier
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.retry_after_default = retry_after_default
        self.clock = clock
        self.listener = listener
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._cooling_until = 0.0
        self._trial_in_flight = False
        self.last_error = ""

    @property
    def raw_state(self) -> BreakerState:
        self.tick()
        return self._state

    @property
    def state(self) -> str:
        """ "up", "down" or "cooling"."""
        return _PUBLIC[self.raw_state]

    @property
    def failures(self) -> int:
        return self._failures

    def tick(self) -> None:
        """Apply time-based changes now (a cooling period that ran out)."""
        if self._state is BreakerState.COOLING and self.clock() >= self._cooling_until:
            self._failures = 0
            self._set(BreakerState.CLOSED, "", "Retry-After elapsed")

    def admit(self) -> Admission:
        """May a chat message use this tier now? Never blocks, never touches the network."""
        state = self.raw_state
        if state is BreakerState.CLOSED:
            return GO
        if state is BreakerState.COOLING:
            return SKIP_COOLING
        if not self._trial_in_flight and self.clock() - self._opened_at >= self.cooldown:
            self._trial_in_flight = True
            self._state = BreakerState.HALF_OPEN
            log.info("%s: cool-down over, letting one trial message through", self.tier)
            return TRIAL
        return SKIP_OPEN

    def admits_probe(self) -> bool:
        # A 429 asked us to wait: probing would only spend more of the rate limit.
        return self.raw_state is not BreakerState.COOLING

    def record_success(self, *, trial: bool = False, probe: bool = False, detail: str = "") -> None:
        if trial:
            self._trial_in_flight = False
        state = self.raw_state
        if state is BreakerState.CLOSED:
            # A /models probe does not prove completions work: only a real answer clears the count.
            if not probe:
                self._failures = 0
        elif state in (BreakerState.OPEN, BreakerState.HALF_OPEN):
            self._failures = 0
            self._trial_in_flight = False
            self._set(BreakerState.CLOSED, "", detail or ("probe succeeded" if probe else "answered"))

    def record_failure(
        self,
        error: str,
        *,
        detail: str = "",
        opens_at_once: bool = False,
        retry_after: float | None = None,
        rate_limited: bool = False,
        trial: bool = False,
    ) -> None:
        self.last_error = error
        if trial:
            self._trial_in_flight = False
        if rate_limited:
            self.cool_down(retry_after, error=error, detail=detail)
            return
        state = self.raw_state
        if state is BreakerState.HALF_OPEN and trial:
            self._open(error, detail)
        elif state is BreakerState.CLOSED:
            self._failures += 1
            if opens_at_once or self._failures >= self.failure_threshold:
                self._open(error, detail)

    def release_trial(self) -> None:
        """The trial message never reached the tier (no slot, cancelled): let the next one try."""
        if self._trial_in_flight:
            self._trial_in_flight = False
            if self._state is BreakerState.HALF_OPEN:
                self._state = BreakerState.OPEN

    def cool_down(self, retry_after: float | None, *, error: str = "RateLimited", detail: str = "") -> None:
        seconds = self.retry_after_default if retry_after is None else retry_after
        self._cooling_until = max(self._cooling_until, self.clock() + seconds)
        self._trial_in_flight = False
        self._set(BreakerState.COOLING, error, detail or f"cooling for {seconds:g} s")

    def force_open(self, error: str, detail: str = "", *, notify: bool = True) -> None:
        """Known down without having tried (boot detection found nothing)."""
        self.last_error = error
        self._open(error, detail, notify=notify)

    def _open(self, error: str, detail: str, *, notify: bool = True) -> None:
        self._opened_at = self.clock()
        self._trial_in_flight = False
        self._set(BreakerState.OPEN, error, detail, notify=notify)

    def _set(self, new: BreakerState, error: str, detail: str, *, notify: bool = True) -> None:
        before = _PUBLIC[self._state]
        self._state = new
        after = _PUBLIC[new]
        if before == after or not notify:
            return
        if after == "up":
            log.info("%s LLM is up again (%s)", self.tier, detail)
        elif after == "cooling":
            log.warning("%s LLM is rate limited (%s): %s, messages skip it", self.tier, error, detail)
        else:
            log.warning(
                "%s LLM is down (%s%s): breaker open, messages skip it until a probe succeeds",
                self.tier,
                error,
                f": {detail}" if detail else "",
            )
        if self.listener is not None:
            try:
                self.listener(StateChange(self.tier, after, before, error, detail))
            except Exception:
                log.exception("%s: breaker listener failed", self.tier)
