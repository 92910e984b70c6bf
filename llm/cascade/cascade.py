"""The cascade: local tier -> OpenAI tier -> nothing (the caller says a fallback phrase).

Unlike the spec's design, a tier known to be down costs no time: its breaker says so
before any network call. Every answer is streamed under two clocks (first token,
gap between chunks), so a hung or dripping server fails fast. One deadline bounds the
whole message, and the local tier only gets its share of it while a later tier could
still answer: a slow local tier always leaves OpenAI time. An answer that arrives
after the deadline is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from llm.cascade.breaker import SKIP_BY_STATE, SKIP_OPEN, CircuitBreaker
from llm.cascade.errors import ProviderError
from llm.cascade.providers import Clocks, Completion, Provider
from llm.cascade.results import CascadeResult, TierAttempt
from llm.cascade.slots import Slots
from llm.cascade.validate import clean_answer

log = logging.getLogger("llm.cascade")

# Errors that mean the request never reached the server: nothing to count against a budget.
_NOT_SENT = frozenset({"ConnectError", "ConnectTimeout"})
# Errors after which the model may be loading (or stuck): warm it up in the background.
_WARM_UP_AFTER = frozenset({"FirstTokenTimeout"})


class Budget(Protocol):
    """The paid tier's daily budget (`llm.budget.DailyBudget`)."""

    @property
    def exhausted(self) -> bool: ...

    async def allows(self) -> bool: ...

    async def record(
        self,
        *,
        model: str,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        prompt_text: str = "",
        answer_text: str = "",
    ) -> None: ...


@dataclass
class CascadeTier:
    name: str  # "local" or "openai"
    provider: Provider
    breaker: CircuitBreaker
    slots: Slots
    # The longest a request may take on its own clocks; a cut shorter than this is the
    # message's budget running out, not the tier failing.
    budget: float
    # Share of the message deadline this tier may use while a later tier could still answer.
    share: float = 1.0
    daily: Budget | None = None
    # Called after a timeout that may mean "model loading": starts a background warm-up.
    on_timeout: Callable[[CascadeTier], Awaitable[None]] | None = field(default=None, repr=False)

    def usable(self) -> bool:
        """Last seen up and within budget: worth keeping time for (no I/O)."""
        return self.breaker.state == "up" and not (self.daily is not None and self.daily.exhausted)


@dataclass(frozen=True, slots=True)
class Attempt:
    text: str | None = None
    error: str = ""
    timed_out: bool = False
    called: bool = False  # a request went out, or the message waited for the tier
    outcome: str = "skipped"
    latency_ms: float | None = None
    first_token_ms: float | None = None

    def as_tier(self, tier: str) -> TierAttempt:
        return TierAttempt(tier, self.outcome, self.error, self.latency_ms, self.first_token_ms)


class Cascade:
    def __init__(
        self,
        tiers: list[CascadeTier],
        *,
        deadline: float,
        max_tokens: int,
        clocks: Clocks | None = None,
    ) -> None:
        self.tiers = tiers
        self.deadline = deadline
        self.max_tokens = max_tokens
        self.clocks = clocks or Clocks(first_token=5.0, stall=3.0, total=10.0)

    async def run(
        self,
        *,
        system_prompt: str,
        prompt: str,
        max_chars: int,
        history: Sequence[tuple[str, str]] = (),
    ) -> CascadeResult:
        """`history`: the user's earlier (question, answer) exchanges, oldest first, sent to every tier."""
        started = time.monotonic()
        deadline_at = started + self.deadline
        errors: dict[str, str] = {}
        tried: list[TierAttempt] = []
        timed_out = attempted = False
        for index, tier in enumerate(self.tiers):
            later = any(t.usable() for t in self.tiers[index + 1 :])
            end_at = min(deadline_at, time.monotonic() + tier.share * self.deadline) if later else deadline_at
            attempt = await self._try(
                tier,
                system_prompt,
                prompt,
                max_chars,
                end_at,
                by_share=end_at < deadline_at,
                later=later,
                history=history,
            )
            tried.append(attempt.as_tier(tier.name))
            attempted = attempted or attempt.called
            if attempt.text is not None:
                latency = _ms(started)
                log.info("[MODEL] answered by %s in %.0f ms", tier.name, latency)
                return CascadeResult(
                    attempt.text,
                    tier.name,
                    latency,
                    errors,
                    attempted=True,
                    first_token_ms=attempt.first_token_ms,
                    tiers=tuple(tried),
                )
            errors[tier.name] = attempt.error
            timed_out = timed_out or attempt.timed_out
        return CascadeResult(
            None,
            "fallback",
            _ms(started),
            errors,
            timed_out=timed_out,
            attempted=attempted,
            tiers=tuple(tried),
        )

    async def _try(
        self,
        tier: CascadeTier,
        system_prompt: str,
        prompt: str,
        max_chars: int,
        end_at: float,
        *,
        by_share: bool,
        later: bool,
        history: Sequence[tuple[str, str]] = (),
    ) -> Attempt:
        if tier.daily is not None and not await tier.daily.allows():
            return Attempt(error="Budget")
        admission = await tier.breaker.admit()
        if not admission.allowed:
            log.debug("[MODEL] %s skipped: %s", tier.name, admission.reason)
            return Attempt(error=admission.reason)
        trial = admission.trial
        resolved = False
        try:
            remaining = end_at - time.monotonic()
            if remaining <= 0:
                return Attempt(error="Deadline", timed_out=True, outcome="timeout")
            # A tier that looks stuck is skipped only for a tier that can still answer: the last
            # one is waited for (its first-token clock bounds the wait) rather than traded for a
            # canned phrase during a latency spike.
            refused = await tier.slots.acquire(remaining, skip_stuck=later)
            if refused:
                log.debug("[MODEL] %s skipped: %s (%d in flight)", tier.name, refused, tier.slots.in_flight)
                waited = refused == "Deadline"
                return Attempt(
                    error=refused, timed_out=waited, called=waited, outcome="timeout" if waited else "skipped"
                )
            # Read again, not from the admission: with shared state another worker may have
            # found the tier down while this message waited for a slot.
            try:
                state = await tier.breaker.current()
            except BaseException:  # cancelled (a stop, a caller's timeout): the slot comes back
                await tier.slots.release()
                raise
            if not trial and state != "up":
                # It failed for another message while this one waited for a slot: skip it too.
                await tier.slots.release()
                return Attempt(error=SKIP_BY_STATE.get(state, SKIP_OPEN).reason)
            attempt, resolved = await self._call(
                tier, system_prompt, prompt, max_chars, end_at, trial, by_share=by_share, history=history
            )
            return attempt
        finally:
            if trial and not resolved:
                await tier.breaker.release_trial()

    async def _call(
        self,
        tier: CascadeTier,
        system_prompt: str,
        prompt: str,
        max_chars: int,
        end_at: float,
        trial: bool,
        *,
        by_share: bool,
        history: Sequence[tuple[str, str]] = (),
    ) -> tuple[Attempt, bool]:
        """One streamed request within the slot; returns the attempt and whether the breaker heard."""
        log.debug(
            "[MODEL] trying %s at %s (model %s)", tier.name, tier.provider.url, tier.provider.model or "?"
        )
        sent = time.monotonic()
        remaining = end_at - sent
        full = self.clocks
        clocks = Clocks(
            first_token=min(full.first_token, remaining), stall=full.stall, total=min(full.total, remaining)
        )
        answered_in: float | None = None
        completion: Completion | None = None
        try:
            async with asyncio.timeout(remaining + 0.05):  # a backstop: the clocks above fire first
                completion = await tier.provider.complete(
                    system_prompt=system_prompt,
                    prompt=prompt,
                    max_tokens=self.max_tokens,
                    clocks=clocks,
                    on_first_token=tier.slots.first_token,
                    history=history,
                )
            text = clean_answer(completion.text, finish_reason=completion.finish_reason, max_chars=max_chars)
            answered_in = time.monotonic() - sent
        except ProviderError as exc:
            await spent(tier, exc.kind, prompt, completion)
            cut = (exc.kind == "FirstTokenTimeout" and clocks.first_token < full.first_token) or (
                exc.kind == "AnswerTimeout" and clocks.total < full.total
            )
            if cut and not by_share:
                # The message's own deadline ran out (earlier tiers took it): not this tier's fault.
                log.warning("[MODEL] %s cut at the message deadline after %.1f s", tier.name, _s(sent))
                return Attempt(
                    error="Deadline", timed_out=True, called=True, outcome="timeout", latency_ms=_ms(sent)
                ), False
            if cut:
                # Slower than its share, with a faster tier waiting: counted, so a tier that is
                # always this slow ends up skipped instead of costing every message its share.
                exc = ProviderError("TooSlow", f"no full answer within its share ({clocks.total:.1f} s)")
                exc.timed_out = True
            await tier.breaker.record_failure(
                exc.kind,
                detail=exc.detail,
                opens_at_once=exc.opens_at_once,
                retry_after=exc.retry_after,
                rate_limited=exc.rate_limited,
                trial=trial,
            )
            log.warning("[MODEL] %s failed: %s (%s)", tier.name, exc.kind, exc.detail or "no detail")
            if exc.kind in _WARM_UP_AFTER and tier.on_timeout is not None:
                await tier.on_timeout(tier)
            outcome = "timeout" if exc.timed_out else "failed"
            return Attempt(
                error=exc.kind, timed_out=exc.timed_out, called=True, outcome=outcome, latency_ms=_ms(sent)
            ), True
        except TimeoutError:
            log.warning("[MODEL] %s cut at the message deadline after %.1f s", tier.name, _s(sent))
            await spent(tier, "Deadline", prompt, None)
            return Attempt(
                error="Deadline", timed_out=True, called=True, outcome="timeout", latency_ms=_ms(sent)
            ), False
        finally:
            await tier.slots.release(answered_in)
        await spent(tier, "", prompt, completion)
        await tier.breaker.record_success(trial=trial)
        return Attempt(
            text=text,
            called=True,
            outcome="answered",
            latency_ms=_ms(sent),
            first_token_ms=completion.first_token_ms,
        ), True


async def spent(tier: CascadeTier, error: str, prompt: str, completion: Completion | None) -> None:
    """Count a request that reached a budgeted tier (chat, probe or warm-up), with the usage it
    reported, or an estimate from `prompt` and the answer when it reported none."""
    if tier.daily is None or error in _NOT_SENT:
        return
    try:
        await tier.daily.record(
            model=(completion.model if completion else "") or tier.provider.model,
            prompt_tokens=completion.prompt_tokens if completion else None,
            completion_tokens=completion.completion_tokens if completion else None,
            prompt_text=prompt,
            answer_text=completion.text if completion else "",
        )
    except Exception:  # counting must never cost the reply
        log.exception("[MODEL] recording %s usage failed", tier.name)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)


def _s(started: float) -> float:
    return time.monotonic() - started
