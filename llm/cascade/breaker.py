"""A circuit breaker per tier: stop sending chat to a tier that is known to fail.

closed (up) --N consecutive failures, or one that retrying will not fix--> open (down)
closed --a completion that showed no first token--> warming: one background completion
        with a long timeout (a model LM Studio loads on first use); chat skips the tier
warming --the warm-up answered--> closed;  --it failed--> open
open --a completion succeeded (warm-up, completion probe, trial message)--> closed
open --cool-down elapsed, no warm-up running--> half-open: one trial message
any --429--> cooling for Retry-After (or a default), then closed

A `/models` answer never closes a breaker: LM Studio lists models while completions
hang. Only changes of the public state (up/down/cooling/warming) are logged and
reported to the listener, so an outage is one incident, not one line per message.

The state is a `BreakerRecord` kept by a store: in this process (`LocalStore`), or in
Redis so every worker shares one view of each tier (`llm.shared.RedisStore`). Each
transition runs inside `store.update()`, so with Redis exactly one process sees (and
records) each state change.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol, TypeVar

log = logging.getLogger("llm.breaker")

T = TypeVar("T")

# A trial message that never reports back (its worker died) frees the trial after this.
TRIAL_LEASE = 60.0


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    COOLING = "cooling"
    WARMING = "warming"


_PUBLIC = {
    BreakerState.CLOSED: "up",
    BreakerState.OPEN: "down",
    BreakerState.HALF_OPEN: "down",
    BreakerState.COOLING: "cooling",
    BreakerState.WARMING: "warming",
}


@dataclass(slots=True)
class BreakerRecord:
    """Everything a breaker knows; plain data so Redis can hold it as JSON."""

    state: str = BreakerState.CLOSED.value
    failures: int = 0
    opened_at: float = 0.0
    cooling_until: float = 0.0
    trial_until: float = 0.0  # a trial message is out until then
    warming_until: float = 0.0  # a warm-up completion is out until then
    last_error: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> BreakerRecord:
        if not isinstance(data, dict):
            return cls()
        names = {f.name for f in fields(cls)}
        try:
            record = cls(**{k: v for k, v in data.items() if k in names})
            BreakerState(record.state)
        except (TypeError, ValueError):
            return cls()  # a record written by another version: start fresh rather than crash
        return record


class BreakerStore(Protocol):
    async def read(self) -> BreakerRecord: ...

    async def update(self, change: Callable[[BreakerRecord], T]) -> T: ...

    @property
    def last(self) -> BreakerRecord: ...


class LocalStore:
    """This process's own state: no I/O, every call completes at once."""

    def __init__(self) -> None:
        self.record = BreakerRecord()

    @property
    def last(self) -> BreakerRecord:
        return self.record

    async def read(self) -> BreakerRecord:
        return self.record

    async def update(self, change: Callable[[BreakerRecord], T]) -> T:
        return change(self.record)


@dataclass(frozen=True, slots=True)
class StateChange:
    tier: str
    state: str  # "up", "down", "cooling" or "warming"
    previous: str
    error: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    trial: bool = False
    reason: str = ""  # why the tier is skipped: "BreakerOpen", "Cooling" or "Warming"


GO = Admission(allowed=True)
TRIAL = Admission(allowed=True, trial=True)
SKIP_OPEN = Admission(allowed=False, reason="BreakerOpen")
SKIP_COOLING = Admission(allowed=False, reason="Cooling")
SKIP_WARMING = Admission(allowed=False, reason="Warming")
# Why a message skips a tier last seen in each public state other than "up".
SKIP_BY_STATE = {"down": SKIP_OPEN, "cooling": SKIP_COOLING, "warming": SKIP_WARMING}


class CircuitBreaker:
    def __init__(
        self,
        tier: str,
        *,
        failure_threshold: int = 3,
        cooldown: float = 60.0,
        retry_after_default: float = 30.0,
        clock: Callable[[], float] = time.time,
        listener: Callable[[StateChange], None] | None = None,
        store: BreakerStore | None = None,
    ) -> None:
        self.tier = tier
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.retry_after_default = retry_after_default
        self.clock = clock
        self.listener = listener
        self.store: BreakerStore = store if store is not None else LocalStore()

    # -- what the rest reads ------------------------------------------------------------

    @property
    def raw_state(self) -> BreakerState:
        """The last state this process saw (no I/O: for status pages and logs)."""
        return BreakerState(self.store.last.state)

    @property
    def state(self) -> str:
        """ "up", "down", "cooling" or "warming", as last seen."""
        return _PUBLIC[self.raw_state]

    @property
    def failures(self) -> int:
        return self.store.last.failures

    @property
    def last_error(self) -> str:
        return self.store.last.last_error

    async def current(self) -> str:
        """The public state now, time-based changes applied."""
        await self.tick()
        return self.state

    # -- transitions --------------------------------------------------------------------

    async def tick(self) -> None:
        """Apply time-based changes now (a cooling period or a warm-up lease that ran out)."""
        record = await self.store.read()
        if self._due(record, self.clock()):
            await self._update(self._tick)

    async def admit(self) -> Admission:
        """May a chat message use this tier now? Never blocks on the tier's network."""
        record = await self.store.read()
        now = self.clock()
        state = BreakerState(record.state)
        if state is BreakerState.CLOSED:
            return GO
        if self._due(record, now) or (state is BreakerState.OPEN and self._trial_due(record, now)):
            return await self._update(self._admit)
        if state is BreakerState.COOLING:
            return SKIP_COOLING
        if state is BreakerState.WARMING:
            return SKIP_WARMING
        return SKIP_OPEN

    def admits_probe(self) -> bool:
        # A 429 asked us to wait: probing would only spend more of the rate limit.
        return self.raw_state is not BreakerState.COOLING

    async def record_success(
        self,
        *,
        trial: bool = False,
        completion: bool = True,
        probe: bool = False,
        warmup: bool = False,
        detail: str = "",
    ) -> None:
        """A request to the tier worked. Only a completion (not a /models answer) closes it.

        Only a chat answer clears the count of failures: a tier closed again by a 1-token
        probe or warm-up is on probation, and the next failure that reaches the threshold
        opens it again (a "ping" can answer where a real question still times out).
        """

        last = self.store.last
        if not (trial or warmup) and last.state == BreakerState.CLOSED and not last.failures:
            # The common case, an answer from a tier that is up: nothing to write (on Redis,
            # no transaction per answered message).
            return

        def change(record: BreakerRecord) -> list[StateChange]:
            if trial:
                record.trial_until = 0.0
            if warmup:
                record.warming_until = 0.0
            state = BreakerState(record.state)
            if not completion:
                return []
            if not (probe or warmup):
                record.failures = 0
            if state in (BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.WARMING):
                record.trial_until = 0.0
                record.warming_until = 0.0
                return self._set(record, BreakerState.CLOSED, "", detail or "answered")
            return []

        await self._update(change)

    async def record_failure(
        self,
        error: str,
        *,
        detail: str = "",
        opens_at_once: bool = False,
        retry_after: float | None = None,
        rate_limited: bool = False,
        trial: bool = False,
        warmup: bool = False,
    ) -> None:
        def change(record: BreakerRecord) -> list[StateChange]:
            record.last_error = error
            if trial:
                record.trial_until = 0.0
            if warmup:
                record.warming_until = 0.0
            if rate_limited:
                return self._cool(record, retry_after, error, detail)
            state = BreakerState(record.state)
            if state is BreakerState.HALF_OPEN and trial:
                return self._open(record, error, detail)
            if state is BreakerState.WARMING and warmup:
                return self._open(record, error, detail)
            if state is BreakerState.OPEN and warmup:
                # Still down: the next trial message waits a full cool-down from now.
                record.opened_at = self.clock()
                return []
            if state is BreakerState.CLOSED:
                record.failures += 1
                if opens_at_once or record.failures >= self.failure_threshold:
                    return self._open(record, error, detail)
            return []

        await self._update(change)

    async def start_warmup(self, lease: float, *, skip_meanwhile: bool) -> bool:
        """Take the tier's one warm-up slot for `lease` seconds; False if one is already out.

        `skip_meanwhile`: a tier still up goes to "warming" so chat skips it until the
        warm-up tells (a first token that never came means the model is loading or stuck).
        """

        def change(record: BreakerRecord) -> tuple[bool, list[StateChange]]:
            now = self.clock()
            if record.warming_until > now:
                return False, []
            record.warming_until = now + lease
            state = BreakerState(record.state)
            if skip_meanwhile and state is BreakerState.CLOSED:
                # The error that led here (a first token that never came) names the incident.
                cause = record.last_error or "Warming"
                return True, self._set(
                    record, BreakerState.WARMING, cause, "no first token: warming the model up"
                )
            return True, []

        taken, changes = await self.store.update(change)
        self._notify(changes)
        return taken

    async def abandon_warmup(self) -> None:
        """This process stops with its warm-up out: free the slot at once for the other workers
        (a worker that dies instead leaves the lease to run out).

        A tier warming is still unproven: it goes down, not up, and the other workers' probes
        (GET /models, then a warm-up of their own) bring it back once a completion works.
        """

        def change(record: BreakerRecord) -> list[StateChange]:
            record.warming_until = 0.0
            if record.state == BreakerState.WARMING:
                return self._open(record, "WarmupAbandoned", "the process warming it up stopped")
            return []

        await self._update(change)

    async def begin_warming(self) -> None:
        """A warm-up is out and taking long: skip the tier until it returns (boot, model loading)."""

        def change(record: BreakerRecord) -> list[StateChange]:
            if record.state == BreakerState.CLOSED and record.warming_until > self.clock():
                return self._set(record, BreakerState.WARMING, "Warming", "loading the model")
            return []

        await self._update(change)

    async def release_trial(self) -> None:
        """The trial message never reached the tier (no slot, cancelled): let the next one try."""

        def change(record: BreakerRecord) -> list[StateChange]:
            record.trial_until = 0.0
            if record.state == BreakerState.HALF_OPEN:
                record.state = BreakerState.OPEN.value
            return []

        await self._update(change)

    async def cool_down(
        self, retry_after: float | None, *, error: str = "RateLimited", detail: str = ""
    ) -> None:
        await self._update(lambda record: self._cool(record, retry_after, error, detail))

    async def force_open(self, error: str, detail: str = "", *, notify: bool = True) -> None:
        """Known down without having tried (boot detection found nothing)."""

        def change(record: BreakerRecord) -> list[StateChange]:
            record.last_error = error
            changes = self._open(record, error, detail)
            return changes if notify else []

        await self._update(change)

    # -- inside a store update ------------------------------------------------------------

    def _due(self, record: BreakerRecord, now: float) -> bool:
        state = BreakerState(record.state)
        if state is BreakerState.COOLING:
            return now >= record.cooling_until
        if state is BreakerState.WARMING:
            return now >= record.warming_until  # the warming process died: the tier is down
        if state is BreakerState.HALF_OPEN:
            return now >= record.trial_until  # the trial's worker died
        return False

    def _trial_due(self, record: BreakerRecord, now: float) -> bool:
        return (
            record.trial_until <= now
            and record.warming_until <= now
            and now - record.opened_at >= self.cooldown
        )

    def _tick(self, record: BreakerRecord) -> list[StateChange]:
        now = self.clock()
        if not self._due(record, now):
            return []
        state = BreakerState(record.state)
        if state is BreakerState.COOLING:
            record.failures = 0
            return self._set(record, BreakerState.CLOSED, "", "Retry-After elapsed")
        if state is BreakerState.WARMING:
            return self._open(record, "WarmupLost", "the warm-up never reported back")
        record.state = BreakerState.OPEN.value  # half-open whose trial never reported back
        return []

    def _admit(self, record: BreakerRecord) -> tuple[Admission, list[StateChange]]:
        changes = self._tick(record)
        now = self.clock()
        state = BreakerState(record.state)
        if state is BreakerState.CLOSED:
            return GO, changes
        if state is BreakerState.COOLING:
            return SKIP_COOLING, changes
        if state is BreakerState.WARMING:
            return SKIP_WARMING, changes
        if state is BreakerState.OPEN and self._trial_due(record, now):
            record.state = BreakerState.HALF_OPEN.value
            record.trial_until = now + TRIAL_LEASE
            log.info("%s: cool-down over, letting one trial message through", self.tier)
            return TRIAL, changes
        return SKIP_OPEN, changes

    def _cool(
        self, record: BreakerRecord, retry_after: float | None, error: str, detail: str
    ) -> list[StateChange]:
        seconds = self.retry_after_default if retry_after is None else retry_after
        record.cooling_until = max(record.cooling_until, self.clock() + seconds)
        record.trial_until = 0.0
        return self._set(record, BreakerState.COOLING, error, detail or f"cooling for {seconds:g} s")

    def _open(self, record: BreakerRecord, error: str, detail: str) -> list[StateChange]:
        record.opened_at = self.clock()
        record.trial_until = 0.0
        return self._set(record, BreakerState.OPEN, error, detail)

    def _set(self, record: BreakerRecord, new: BreakerState, error: str, detail: str) -> list[StateChange]:
        before = _PUBLIC[BreakerState(record.state)]
        record.state = new.value
        after = _PUBLIC[new]
        if before == after:
            return []
        return [StateChange(self.tier, after, before, error, detail)]

    async def _update(self, change: Callable[[BreakerRecord], Any]) -> Any:
        result = await self.store.update(change)
        if isinstance(result, tuple):
            value, changes = result
        else:
            value, changes = None, result
        self._notify(changes)
        return value

    def _notify(self, changes: list[StateChange]) -> None:
        for change in changes:
            if change.state == "up":
                log.info("%s LLM is up again (%s)", self.tier, change.detail)
            elif change.state == "cooling":
                log.warning(
                    "%s LLM is rate limited (%s): %s, messages skip it",
                    self.tier,
                    change.error,
                    change.detail,
                )
            elif change.state == "warming":
                log.warning(
                    "%s LLM showed no first token: warming it up in the background, messages skip it",
                    self.tier,
                )
            else:
                log.warning(
                    "%s LLM is down (%s%s): breaker open, messages skip it until a completion succeeds",
                    self.tier,
                    change.error,
                    f": {change.detail}" if change.detail else "",
                )
            if self.listener is not None:
                try:
                    self.listener(change)
                except Exception:
                    log.exception("%s: breaker listener failed", self.tier)
