"""Background health: every tier is probed on a schedule and its breaker told the result.

This is what brings a tier back after an outage (and an LLM started after the bot
into use) without a chat message paying for the attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from llm.cascade import CascadeTier
from llm.history import HistoryRecorder
from llm.results import ProbeResult

log = logging.getLogger("llm.health")


class HealthMonitor:
    def __init__(
        self,
        tiers: list[CascadeTier],
        *,
        interval: float,
        kind: str,
        recorder: HistoryRecorder | None = None,
    ) -> None:
        self.tiers = tiers
        self.interval = interval
        self.kind = kind
        self.recorder = recorder
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and self.tiers:
            self._task = asyncio.create_task(self._run(), name="llm-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def probe_all(self, *, force: bool = False) -> list[ProbeResult]:
        """Probe every tier at once. `force` probes cooling tiers too (an operator asked)."""
        results = await asyncio.gather(*(self.probe(tier, force=force) for tier in self.tiers))
        return [r for r in results if r is not None]

    async def probe(self, tier: CascadeTier, *, force: bool = False) -> ProbeResult | None:
        tier.breaker.tick()
        if not force and not tier.breaker.admits_probe():
            return None
        try:
            # Each phase has its own httpx timeout; this also bounds a server that drips bytes.
            async with asyncio.timeout(tier.budget + 1.0):
                result = await tier.provider.probe(self.kind)
        except TimeoutError:
            result = ProbeResult(
                tier=tier.name,
                url=tier.provider.url,
                ok=False,
                latency_ms=None,
                error="Deadline",
                kind=self.kind,
            )
        self._apply(tier, result)
        if self.recorder is not None:
            self.recorder.record_probe(result)
        return result

    @staticmethod
    def _apply(tier: CascadeTier, result: ProbeResult) -> None:
        if result.ok:
            log.debug("probe %s ok in %.0f ms (%s)", tier.name, result.latency_ms or 0, result.detail)
            tier.breaker.record_success(probe=True, detail=f"probe ok: {result.detail}")
        else:
            log.debug("probe %s failed: %s %s", tier.name, result.error, result.detail)
            tier.breaker.record_failure(
                result.error,
                detail=result.detail,
                opens_at_once=result.opens_at_once,
                retry_after=result.retry_after,
                rate_limited=result.error == "RateLimited",
            )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.probe_all()
            except Exception:  # a bug in one round must not end the probing for good
                log.exception("health probe round failed")
