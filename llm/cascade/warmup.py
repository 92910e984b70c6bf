"""Warm-ups: one background completion with a long timeout, for a model being loaded.

LM Studio loads a model on its first request (and unloads idle ones), and keeps
listing it on `/models` meanwhile: the first completion can take a minute. Rather
than make viewers wait, the tier is skipped while one warm-up completion per tier
(one across all workers when the state is shared) waits up to LLM_WARMUP_TIMEOUT.
When it answers, the tier is used again; when it fails, the tier is down.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from llm.cascade.breaker import LocalStore
from llm.cascade.cascade import spent
from llm.cascade.providers import PROBE_PROMPT, Clocks
from llm.cascade.results import ProbeResult
from serdabot.tasks import CLEANUP_WITHIN, cancel_and_wait, finish_shielded

if TYPE_CHECKING:
    from llm.cascade.cascade import CascadeTier
    from llm.history.recorder import HistoryRecorder

log = logging.getLogger("llm.warmup")

# The lease outlives the warm-up's own timeout a little: a worker that dies mid-warm-up
# frees the tier's warm-up slot once the lease runs out.
LEASE_MARGIN = 5.0


class WarmUps:
    def __init__(
        self, timeout: float, recorder: HistoryRecorder | None = None, *, stall: float | None = None
    ) -> None:
        self.timeout = timeout
        # Only the first token may take that long (a model being loaded): once it streams, a
        # gap between chunks is the tier's usual stall clock.
        self.stall = timeout if stall is None else min(stall, timeout)
        self.recorder = recorder
        # The bot's own system prompt, when it has one: a model slow to read the real prompt
        # (a CPU and a long prompt) must not pass a warm-up that reads only "ping".
        self.system_prompt = ""
        self._tasks: dict[str, asyncio.Task[bool]] = {}

    def running(self, tier: CascadeTier) -> bool:
        task = self._tasks.get(tier.name)
        return task is not None and not task.done()

    async def trigger(self, tier: CascadeTier, *, skip_meanwhile: bool = True) -> asyncio.Task[bool] | None:
        """Take the tier's warm-up slot and run the warm-up in the background.

        The slot (and, with `skip_meanwhile`, the switch to "warming") is taken before this
        returns, so the very next message already skips the tier. None: a warm-up is out.
        """
        if self.running(tier):
            return None
        if tier.daily is not None and not await tier.daily.allows():
            return None  # over its daily budget: nothing is sent to it before midnight
        if not await tier.breaker.start_warmup(self.timeout + LEASE_MARGIN, skip_meanwhile=skip_meanwhile):
            return None
        task = asyncio.create_task(self._warm(tier), name=f"warmup-{tier.name}")
        self._tasks[tier.name] = task
        task.add_done_callback(_log_crash)
        return task

    async def _warm(self, tier: CascadeTier) -> bool:
        """True: the model answered; False: it did not."""
        log.info("[MODEL] warming %s up (one completion, up to %.0f s)", tier.name, self.timeout)
        clocks = Clocks(first_token=self.timeout, stall=self.stall, total=self.timeout)
        try:
            async with asyncio.timeout(self.timeout + 1.0):
                result = await tier.provider.probe(
                    "completion", clocks=clocks, system_prompt=self.system_prompt
                )
        except asyncio.CancelledError:
            # Stopping: other workers must not wait for a lease nobody will report on. (In this
            # process alone, the state goes with the process.)
            if not isinstance(tier.breaker.store, LocalStore):
                await finish_shielded(tier.breaker.abandon_warmup(), within=CLEANUP_WITHIN)
            raise
        except TimeoutError:
            result = ProbeResult(
                tier=tier.name,
                url=tier.provider.url,
                ok=False,
                latency_ms=None,
                error="Deadline",
                kind="completion",
                detail=f"warm-up: no answer in {self.timeout:g} s",
            )
        if self.recorder is not None:
            self.recorder.record_probe(result)
        await spent(tier, result.error, self.system_prompt + PROBE_PROMPT, None)
        if result.ok:
            log.info("[MODEL] %s warmed up in %.0f ms", tier.name, result.latency_ms or 0)
            if result.latency_ms is not None and result.latency_ms < self.stall * 1000:
                # One token: its time is the time to a first token (a model still loading, longer
                # than a stall, says nothing of the usual wait).
                tier.slots.observed_first_token(result.latency_ms / 1000)
            await tier.breaker.record_success(warmup=True, detail="warm-up answered")
        else:
            await tier.breaker.record_failure(
                result.error,
                detail=f"warm-up: {result.detail}" if result.detail else "warm-up failed",
                opens_at_once=result.opens_at_once,
                retry_after=result.retry_after,
                rate_limited=result.error == "RateLimited",
                warmup=True,
            )
        return result.ok

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks.values())
        self._tasks.clear()


def _log_crash(task: asyncio.Task[bool]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("warm-up failed unexpectedly: %s", error, exc_info=error)
