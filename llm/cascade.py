"""The cascade: local tier -> OpenAI tier -> nothing (the caller says a fallback phrase).

Unlike the spec's design, a tier known to be down costs no time: its breaker says so
before any network call. One deadline bounds the whole message; an answer that
arrives after it is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from llm.breaker import CircuitBreaker
from llm.errors import ProviderError
from llm.providers import Provider
from llm.results import CascadeResult
from llm.slots import Slots
from llm.validate import clean_answer

log = logging.getLogger("llm.cascade")


@dataclass
class CascadeTier:
    name: str  # "local" or "openai"
    provider: Provider
    breaker: CircuitBreaker
    slots: Slots
    # The longest a request may take on its own timeouts; a deadline cut shorter than
    # this is the message's budget running out, not the tier failing.
    budget: float


@dataclass(frozen=True, slots=True)
class Attempt:
    text: str | None = None
    error: str = ""
    timed_out: bool = False
    called: bool = False  # a request went out, or the message waited for the tier


class Cascade:
    def __init__(self, tiers: list[CascadeTier], *, deadline: float, max_tokens: int) -> None:
        self.tiers = tiers
        self.deadline = deadline
        self.max_tokens = max_tokens

    async def run(self, *, system_prompt: str, prompt: str, max_chars: int) -> CascadeResult:
        started = time.monotonic()
        deadline_at = started + self.deadline
        errors: dict[str, str] = {}
        timed_out = attempted = False
        for tier in self.tiers:
            attempt = await self._try(tier, system_prompt, prompt, max_chars, deadline_at)
            attempted = attempted or attempt.called
            if attempt.text is not None:
                latency = _ms(started)
                log.info("[MODEL] answered by %s in %.0f ms", tier.name, latency)
                return CascadeResult(attempt.text, tier.name, latency, errors, attempted=True)
            errors[tier.name] = attempt.error
            timed_out = timed_out or attempt.timed_out
        return CascadeResult(None, "fallback", _ms(started), errors, timed_out=timed_out, attempted=attempted)

    async def _try(
        self, tier: CascadeTier, system_prompt: str, prompt: str, max_chars: int, deadline_at: float
    ) -> Attempt:
        admission = tier.breaker.admit()
        if not admission.allowed:
            log.debug("[MODEL] %s skipped: %s", tier.name, admission.reason)
            return Attempt(error=admission.reason)
        trial = admission.trial
        resolved = False
        try:
            remaining = deadline_at - time.monotonic()
            if remaining <= 0:
                return Attempt(error="Deadline", timed_out=True)
            refused = await tier.slots.acquire(remaining)
            if refused:
                log.debug("[MODEL] %s skipped: %s (%d in flight)", tier.name, refused, tier.slots.in_flight)
                return Attempt(error=refused, timed_out=refused == "Deadline", called=refused == "Deadline")
            log.debug(
                "[MODEL] trying %s at %s (model %s)", tier.name, tier.provider.url, tier.provider.model or "?"
            )
            sent = time.monotonic()
            answered_in: float | None = None
            try:
                async with asyncio.timeout(deadline_at - sent):
                    completion = await tier.provider.complete(
                        system_prompt=system_prompt, prompt=prompt, max_tokens=self.max_tokens
                    )
                text = clean_answer(
                    completion.text, finish_reason=completion.finish_reason, max_chars=max_chars
                )
                answered_in = time.monotonic() - sent
            except ProviderError as exc:
                resolved = True
                tier.breaker.record_failure(
                    exc.kind,
                    detail=exc.detail,
                    opens_at_once=exc.opens_at_once,
                    retry_after=exc.retry_after,
                    rate_limited=exc.rate_limited,
                    trial=trial,
                )
                log.warning("[MODEL] %s failed: %s (%s)", tier.name, exc.kind, exc.detail or "no detail")
                return Attempt(error=exc.kind, timed_out=exc.timed_out, called=True)
            except TimeoutError:
                spent = time.monotonic() - sent
                if spent >= tier.budget:
                    resolved = True
                    tier.breaker.record_failure("Deadline", detail=f"no answer in {spent:.1f} s", trial=trial)
                log.warning("[MODEL] %s cut at the message deadline after %.1f s", tier.name, spent)
                return Attempt(error="Deadline", timed_out=True, called=True)
            finally:
                tier.slots.release(answered_in)
            resolved = True
            tier.breaker.record_success(trial=trial)
            return Attempt(text=text, called=True)
        finally:
            if trial and not resolved:
                tier.breaker.release_trial()


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)
