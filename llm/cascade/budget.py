"""The paid tier's daily budget: requests and tokens sent to OpenAI per local day.

The cascade asks `allows()` before each OpenAI request and calls `record()` after it.
Both read memory, or make one Redis round trip when several workers share the budget
(REDIS_URL): the counters then live in Redis under keys named with the local date, so
every worker sees the same totals and a new day starts from zero by itself.

A limit is checked before a request, so the requests already in flight when it is
reached still count (at most LLM_MAX_INFLIGHT_OPENAI per worker over the limit), and
the request that crosses the token limit is the last one of the day.

When the budget is reached, each process logs it once a day; the listener hears it
once for all processes (the first to change the day's state key in Redis tells), or
once per process without Redis or while Redis does not answer. If Redis stops
answering, each process counts by itself, says so once, and adds what it counted to
the shared counters when Redis answers again.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.db.models import Count, Sum
from django.utils import timezone
from redis.exceptions import RedisError

from llm.models import BudgetSettings, Tier, TierEvent, Usage

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from llm.history.recorder import HistoryRecorder

log = logging.getLogger("llm.budget")

TIER = Tier.OPENAI.value
KEY_PREFIX = "serdabot:budget"
# Long enough for every time zone's "today" to be over; short enough not to pile up.
KEY_TTL = 2 * 24 * 3600
# Redis answers in well under a millisecond on a LAN; past this the hot path stops waiting.
SOCKET_TIMEOUT = 0.5
# While Redis is known down, ask it again only this often: chat must not pay a
# connection attempt per message.
REDIS_RETRY = timedelta(seconds=2)


@dataclass(frozen=True, slots=True)
class BudgetToday:
    date: date
    requests: int
    tokens: int
    request_limit: int | None  # effective: the admin's value when set, else the environment's
    token_limit: int | None

    @property
    def reached(self) -> bool:
        return (self.request_limit is not None and self.requests >= self.request_limit) or (
            self.token_limit is not None and self.tokens >= self.token_limit
        )


def estimate_tokens(text: str) -> int:
    """About four characters per token: OpenAI's rule of thumb for English text."""
    return math.ceil(len(text) / 4)


def local_midnight(moment: datetime) -> datetime:
    """The start of `moment`'s day in `moment`'s own time zone (DST days included)."""
    return datetime.combine(moment.date(), time.min, tzinfo=moment.tzinfo)


class DailyBudget:
    def __init__(
        self,
        *,
        requests: int | None,
        tokens: int | None,
        redis_url: str = "",
        now: Callable[[], datetime] = timezone.localtime,
        recorder: HistoryRecorder | None = None,
        listener: Callable[[str, str], None] | None = None,
    ) -> None:
        self.env_requests = requests
        self.env_tokens = tokens
        self.redis_url = redis_url
        self._now = now
        self.recorder = recorder
        self.listener = listener
        # Written from the change listener's thread, read on the event loop: plain
        # attribute assignments, so a reader sees either the old or the new value.
        self.admin_requests: int | None = None
        self.admin_tokens: int | None = None
        self._day = now().date()
        # This process's view of today's totals: the truth without Redis, the last totals
        # Redis gave plus what Redis missed while unreachable with it.
        self._requests = 0
        self._tokens = 0
        # Counted while Redis was unreachable, added to its counters once it answers.
        self._pending_requests = 0
        self._pending_tokens = 0
        self._exhausted = False
        self._client: aioredis.Redis | None = None
        self._redis_down = False
        self._redis_retry_at: datetime | None = None

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        now = self._now()
        self._day = now.date()
        try:
            limits, (requests, tokens) = await sync_to_async(_load, thread_sensitive=True)(
                local_midnight(now)
            )
        except Exception as exc:  # the database may be down: the bot answers anyway
            log.warning(
                "OpenAI budget: could not read today's usage (%s: %s); counting from 0",
                type(exc).__name__,
                exc,
            )
        else:
            self.admin_requests, self.admin_tokens = limits
            self._requests, self._tokens = requests, tokens
        if self.redis_url:
            # Redis's totals win when higher (they hold what other workers' history queues
            # have not written yet); the database's when Redis lost its data.
            await self._sync(0, 0)
        if self.today().reached:
            # Reached before this process started: no listener call (the caller records
            # the state at start from `exhausted`), but the log says why OpenAI is skipped.
            self._exhausted = True
            log.warning("[MODEL] %s", self._describe("OpenAI daily budget already reached"))

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    def reload_limits(self) -> None:
        """Re-read the admin's limits (from the change listener's thread)."""
        try:
            self.admin_requests, self.admin_tokens = _read_limits()
        except Exception as exc:
            log.warning("OpenAI budget: could not read the admin's limits (%s)", type(exc).__name__)

    # -- the hot path -----------------------------------------------------------------

    async def allows(self) -> bool:
        await self._roll()
        if self.request_limit is None and self.token_limit is None and not self._exhausted:
            return True  # nothing to check: no round trip
        if self.redis_url:
            await self._sync(0, 0)
        return not await self._check()

    async def record(
        self,
        *,
        model: str,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        prompt_text: str = "",
        answer_text: str = "",
    ) -> None:
        await self._roll()
        reported = prompt_tokens is not None and completion_tokens is not None
        prompt = estimate_tokens(prompt_text) if prompt_tokens is None else prompt_tokens
        completion = estimate_tokens(answer_text) if completion_tokens is None else completion_tokens
        if self.recorder is not None:
            self.recorder.record_usage(
                tier=TIER,
                model=model,
                prompt_tokens=prompt,
                completion_tokens=completion,
                reported=reported,
            )
        if not (self.redis_url and await self._sync(1, prompt + completion)):
            self._requests += 1
            self._tokens += prompt + completion
        await self._check()

    # -- what the dashboard and the cascade read ---------------------------------------

    @property
    def exhausted(self) -> bool:
        # Yesterday's limit does not hold today, even before anything asked since midnight.
        return self._exhausted and self._now().date() == self._day

    @property
    def request_limit(self) -> int | None:
        return self.admin_requests if self.admin_requests is not None else self.env_requests

    @property
    def token_limit(self) -> int | None:
        return self.admin_tokens if self.admin_tokens is not None else self.env_tokens

    def today(self) -> BudgetToday:
        day = self._now().date()
        if day != self._day:  # nobody asked since midnight: today has no usage yet
            return BudgetToday(day, 0, 0, self.request_limit, self.token_limit)
        return BudgetToday(day, self._requests, self._tokens, self.request_limit, self.token_limit)

    # -- steps ------------------------------------------------------------------------

    async def _roll(self) -> None:
        day = self._now().date()
        if day == self._day:
            return
        self._day = day
        self._requests = self._tokens = 0
        # What Redis missed yesterday belongs to yesterday's keys, which nobody reads now.
        self._pending_requests = self._pending_tokens = 0
        if self._exhausted:
            self._exhausted = False
            log.info("[MODEL] a new day: the OpenAI daily budget is available again")
            await self._notify(
                TierEvent.State.UP.value, f"new day {day.isoformat()}: daily budget reset", new_day=True
            )

    async def _check(self) -> bool:
        """True when today's budget is reached; tells the listener when that changes."""
        reached = self.today().reached
        # The flag changes before any await: concurrent calls see it and stay quiet.
        if reached and not self._exhausted:
            self._exhausted = True
            # Once per process and day; the listener once for all processes (see _notify).
            log.warning(
                "[MODEL] %s: OpenAI is skipped until midnight", self._describe("OpenAI daily budget reached")
            )
            await self._notify(TierEvent.State.BUDGET.value, self._describe("daily budget reached"))
        elif not reached and self._exhausted:
            # The admin raised a limit: usable again the same day.
            self._exhausted = False
            log.info("[MODEL] %s: OpenAI is used again", self._describe("OpenAI daily limit raised"))
            await self._notify(TierEvent.State.UP.value, self._describe("daily limit raised"))
        return reached

    def _describe(self, what: str) -> str:
        today = self.today()
        requests = f"{today.requests}/{_or_none(today.request_limit)}"
        tokens = f"{today.tokens}/{_or_none(today.token_limit)}"
        return f"{what} ({requests} requests, {tokens} tokens today)"

    async def _notify(self, state: str, detail: str, *, new_day: bool = False) -> None:
        if self.listener is None:
            return
        if self.redis_url and self._redis_available():
            # Several workers make the same change: the one whose SET replaces another
            # state is the one that tells. Without an answer from Redis, tell anyway.
            # A new day's "up" is told only by the first worker into that day: a worker that
            # rolls over later, after today's budget is already spent, has nothing to tell.
            try:
                if new_day:
                    first = await self._redis().set(self._key("state"), state, ex=KEY_TTL, nx=True)
                    previous: Any = None if first else state.encode()
                else:
                    previous = await self._redis().set(self._key("state"), state, ex=KEY_TTL, get=True)
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
            else:
                if isinstance(previous, bytes) and previous.decode() == state:
                    return
        try:
            self.listener(state, detail)
        except Exception:  # the caller's bug must not cost chat its answer
            log.exception("OpenAI budget: the state listener failed")

    # -- Redis ------------------------------------------------------------------------

    def _key(self, name: str) -> str:
        return f"{KEY_PREFIX}:{self._day.isoformat()}:{name}"

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            # Created on first use, inside the loop that will use it. One immediate retry
            # (a pooled connection Redis dropped), not redis-py's ten with backoff: the hot
            # path waits on this, and REDIS_RETRY spaces out the next attempts.
            self._client = aioredis.Redis.from_url(
                self.redis_url,
                socket_timeout=SOCKET_TIMEOUT,
                socket_connect_timeout=SOCKET_TIMEOUT,
                retry=Retry(NoBackoff(), 1),
            )
        return self._client

    def _redis_available(self) -> bool:
        return self._redis_retry_at is None or self._now() >= self._redis_retry_at

    async def _sync(self, requests: int, tokens: int) -> bool:
        """Add to the shared counters and read today's totals, in one round trip.

        False when Redis did not answer: the caller counts in this process instead, and
        what Redis missed is added to its counters once it answers again.
        """
        if not self._redis_available():
            self._pending_requests += requests
            self._pending_tokens += tokens
            return False
        day = self._day
        add_requests, add_tokens = requests + self._pending_requests, tokens + self._pending_tokens
        self._pending_requests = self._pending_tokens = 0
        # What the totals must at least be, if Redis kept its data.
        floor_requests, floor_tokens = self._requests + requests, self._tokens + tokens
        keys = self._key("requests"), self._key("tokens")
        sent = False
        try:
            async with self._redis().pipeline(transaction=False) as pipe:
                pipe.incrby(keys[0], add_requests)
                pipe.incrby(keys[1], add_tokens)
                pipe.expire(keys[0], KEY_TTL)
                pipe.expire(keys[1], KEY_TTL)
                total_requests, total_tokens, _, _ = await pipe.execute()
                sent = True
                if total_requests < floor_requests or total_tokens < floor_tokens:
                    # Redis lost its data (a restart without persistence): put back what
                    # this process knows rather than start the day over.
                    pipe.incrby(keys[0], max(floor_requests - total_requests, 0))
                    pipe.incrby(keys[1], max(floor_tokens - total_tokens, 0))
                    total_requests, total_tokens = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._redis_failed(exc)
            if not sent:
                if day == self._day:
                    self._pending_requests += add_requests
                    self._pending_tokens += add_tokens
                return False
            # Only the repair failed: the increments are in; keep the totals read.
        else:
            self._redis_back()
        if day == self._day:
            # max(): a slower round trip started earlier must not undo a newer total.
            self._requests = max(self._requests, int(total_requests))
            self._tokens = max(self._tokens, int(total_tokens))
        return True

    def _redis_back(self) -> None:
        if self._redis_down:
            self._redis_down = False
            self._redis_retry_at = None
            log.info("OpenAI budget: Redis answers again; back to the shared daily counters")

    def _redis_failed(self, exc: BaseException) -> None:
        self._redis_retry_at = self._now() + REDIS_RETRY
        if not self._redis_down:
            self._redis_down = True
            log.warning(
                "OpenAI budget: Redis unreachable (%s); counting in this process until it answers again",
                type(exc).__name__,
            )


def _or_none(limit: int | None) -> str:
    return "no limit" if limit is None else str(limit)


def _load(start: datetime) -> tuple[tuple[int | None, int | None], tuple[int, int]]:
    return _read_limits(), _usage_since(start)


def _read_limits() -> tuple[int | None, int | None]:
    row = BudgetSettings._default_manager.order_by("pk").first()
    return (None, None) if row is None else (row.daily_requests, row.daily_tokens)


def _usage_since(start: datetime) -> tuple[int, int]:
    """Requests and tokens of the OpenAI tier since `start`, summed by the database."""
    totals = Usage._default_manager.filter(tier=TIER, created__gte=start).aggregate(
        requests=Count("pk"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens")
    )
    return int(totals["requests"]), int(totals["prompt"] or 0) + int(totals["completion"] or 0)
