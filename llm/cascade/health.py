"""Background health: every tier is probed on a schedule and its breaker told the result.

This is what brings a tier back after an outage (and an LLM started after the bot
into use) without a chat message paying for the attempt. A tier that is up gets the
configured probe (`LLM_PROBE`); a tier that is down or warming gets a cheap `/models`
first and, when that answers, a warm-up completion: only a completion that works
closes a breaker, since LM Studio lists models while its completions hang.
"""

from __future__ import annotations

import asyncio
import logging

from llm.cascade.cascade import CascadeTier, spent
from llm.cascade.providers import PROBE_PROMPT
from llm.cascade.results import ProbeResult
from llm.cascade.warmup import WarmUps
from llm.history.recorder import HistoryRecorder
from serdabot.tasks import cancel_and_wait

log = logging.getLogger("llm.health")


class HealthMonitor:
    def __init__(
        self,
        tiers: list[CascadeTier],
        *,
        interval: float,
        kind: str,
        recorder: HistoryRecorder | None = None,
        warmups: WarmUps | None = None,
    ) -> None:
        self.tiers = tiers
        self.interval = interval
        self.kind = kind
        self.recorder = recorder
        self.warmups = warmups
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and self.tiers:
            self._task = asyncio.create_task(self._run(), name="llm-health")

    async def stop(self) -> None:
        if self._task is not None:
            # Its probes read and write the shared tier state on Redis (serdabot/tasks.py).
            await cancel_and_wait([self._task])
            self._task = None

    async def probe_all(self, *, force: bool = False) -> list[ProbeResult]:
        """Probe every tier at once. `force` probes cooling tiers too (an operator asked)."""
        results = await asyncio.gather(*(self.probe(tier, force=force) for tier in self.tiers))
        return [r for r in results if r is not None]

    async def probe(self, tier: CascadeTier, *, force: bool = False) -> ProbeResult | None:
        await tier.breaker.tick()
        if not force and not tier.breaker.admits_probe():
            return None
        if tier.daily is not None and not force and not await tier.daily.allows():
            # Over its daily budget, the tier is skipped until midnight: a probe would only
            # spend. (Asking rolls the budget over at midnight, even with no message.)
            return None
        if not force and (tier.slots.in_flight > 0 or await tier.slots.busy_elsewhere()):
            # The tier is answering chat: those calls say how it is. A probe would queue behind
            # them on a one-at-a-time server, and llama.cpp's Python server ends the stream it
            # is sending when another request arrives.
            return None
        down = tier.breaker.state != "up"
        # An operator's probe (llmstatus) asks what it was told to; the schedule keeps a down
        # tier's probe cheap and leaves the completion to the warm-up.
        kind = "models" if down and not force else self.kind
        try:
            # Each phase has its own timeout; this also bounds anything the clocks miss.
            async with asyncio.timeout(tier.budget + 1.0):
                result = await tier.provider.probe(kind)
        except TimeoutError:
            result = ProbeResult(
                tier=tier.name, url=tier.provider.url, ok=False, latency_ms=None, error="Deadline", kind=kind
            )
        if self.recorder is not None:
            self.recorder.record_probe(result)
        if kind == "completion":
            await spent(tier, result.error, PROBE_PROMPT, None)
        await self._apply(tier, result, down=down)
        return result

    async def _apply(self, tier: CascadeTier, result: ProbeResult, *, down: bool) -> None:
        if result.ok:
            log.debug("probe %s ok in %.0f ms (%s)", tier.name, result.latency_ms or 0, result.detail)
            completion = result.kind == "completion"
            if completion and result.latency_ms is not None:
                tier.slots.observed_first_token(result.latency_ms / 1000)  # one token: a first token
            await tier.breaker.record_success(
                completion=completion, probe=True, detail=f"probe ok: {result.detail}"
            )
            if down and self.warmups is not None:
                # The server answers: find out whether it can complete, without a viewer waiting.
                await self.warmups.trigger(tier, skip_meanwhile=False)
            return
        log.debug("probe %s failed: %s %s", tier.name, result.error, result.detail)
        await tier.breaker.record_failure(
            result.error,
            detail=result.detail,
            opens_at_once=result.opens_at_once,
            retry_after=result.retry_after,
            rate_limited=result.error == "RateLimited",
        )
        timed_out = result.error in ("FirstTokenTimeout", "ReadTimeout")
        if result.kind == "completion" and timed_out and self.warmups is not None:
            await self.warmups.trigger(tier, skip_meanwhile=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.probe_all()
            except Exception:  # a bug in one round must not end the probing for good
                log.exception("health probe round failed")
