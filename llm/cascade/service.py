"""`LLMService`: what the rest of the project talks to.

It wires the tiers (provider + breaker + slots), boot detection, warm-ups,
background probes, the paid tier's daily budget and the history recorder, and
answers `complete()` without ever raising. With `redis_url` (REDIS_URL), breakers and
in-flight bounds are shared by every worker (`llm.shared`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from llm.cascade.breaker import BreakerStore, CircuitBreaker, StateChange
from llm.cascade.budget import DailyBudget
from llm.cascade.cascade import Cascade, CascadeTier
from llm.cascade.config import OPENAI_DEFAULT_BASE_URL, LLMConfig, load_config
from llm.cascade.detection import DetectionResult, detect, log_detection
from llm.cascade.health import HealthMonitor
from llm.cascade.providers import Clocks, Provider
from llm.cascade.results import CascadeResult, ProbeResult
from llm.cascade.shared import RedisStore, SharedLeases, SharedRedis, tier_key
from llm.cascade.slots import Slots
from llm.cascade.warmup import WarmUps
from llm.history.recorder import HistoryRecorder
from llm.models import Probe, TierEvent
from serdabot.redact import register_secret

log = logging.getLogger("llm.service")

NOT_CONFIGURED = TierEvent.State.NOT_CONFIGURED.value


class LLMService:
    def __init__(
        self,
        config: LLMConfig,
        recorder: HistoryRecorder | None = None,
        *,
        clock: Callable[[], float] = time.time,
        redis_url: str | None = None,
        today: Callable[[], datetime] = timezone.localtime,
    ) -> None:
        self.config = config
        self.recorder = recorder if recorder is not None else HistoryRecorder()
        for secret in (config.api_key, config.openai_api_key):
            register_secret(secret)
        url = settings.REDIS_URL if redis_url is None else redis_url
        self.shared = SharedRedis(url) if url else None
        self.warmups = WarmUps(config.warmup_timeout, self.recorder, stall=config.stall_timeout)
        self.budget: DailyBudget | None = None
        self.local = self._tier(
            "local",
            config.endpoint,
            api_key=config.api_key,
            model=config.model,
            max_inflight=config.max_inflight_local,
            clock=clock,
        )
        # Every configured tier, for probes and llmstatus; the cascade uses none when disabled.
        self.tiers = [self.local]
        self.openai: CascadeTier | None = None
        if config.openai_enabled:
            official = config.openai_base_url.rstrip("/") == OPENAI_DEFAULT_BASE_URL
            self.openai = self._tier(
                "openai",
                config.openai_base_url,
                api_key=config.openai_api_key,
                model=config.openai_model,
                max_inflight=config.max_inflight_openai,
                clock=clock,
                # Newer OpenAI models refuse max_tokens; compatible servers may not know the new name.
                token_param="max_completion_tokens" if official else "max_tokens",
                include_usage=True,
                trust_env=True,
            )
            self.tiers.append(self.openai)
            self.budget = DailyBudget(
                requests=config.openai_daily_requests,
                tokens=config.openai_daily_tokens,
                redis_url=url or "",
                now=today,  # the local clock whose midnight resets the budget (tests move it)
                recorder=self.recorder,
                listener=self._on_budget,
            )
            self.openai.daily = self.budget
        # The local tier keeps its share of the deadline only while OpenAI could still answer.
        self.local.share = config.local_share
        self.cascade = Cascade(
            [] if config.mode == "disabled" else self.tiers,
            deadline=config.deadline,
            max_tokens=config.max_tokens,
            clocks=Clocks(config.first_token_timeout, config.stall_timeout, config.timeout),
        )
        self.monitor = HealthMonitor(
            self.cascade.tiers,
            interval=config.probe_interval,
            kind=config.probe_kind,
            recorder=self.recorder,
            warmups=self.warmups,
        )
        self.detection: DetectionResult | None = None

    @classmethod
    def from_settings(cls) -> LLMService:
        return cls(load_config())

    def _tier(
        self,
        name: str,
        url: str,
        *,
        api_key: str,
        model: str,
        max_inflight: int,
        clock: Callable[[], float],
        token_param: str = "max_tokens",
        include_usage: bool = False,
        trust_env: bool = False,
    ) -> CascadeTier:
        config = self.config
        provider = Provider(
            name,
            url,
            api_key=api_key,
            model=model,
            timeout=config.timeout,
            connect_timeout=config.connect_timeout,
            first_token_timeout=config.first_token_timeout,
            stall_timeout=config.stall_timeout,
            max_connections=max_inflight,
            token_param=token_param,
            include_usage=include_usage,
            trust_env=trust_env,
        )
        budget = config.timeout + config.connect_timeout
        store: BreakerStore | None = None
        leases: SharedLeases | None = None
        if self.shared is not None:
            key = tier_key(name, url)
            store = RedisStore(self.shared, key)
            leases = SharedLeases(self.shared, key, max_inflight, lease=budget + 5.0)
        breaker = CircuitBreaker(
            name,
            failure_threshold=config.breaker_failures,
            cooldown=config.breaker_cooldown,
            retry_after_default=config.retry_after_default,
            clock=clock,
            listener=self._on_state_change,
            store=store,
        )
        tier = CascadeTier(name, provider, breaker, Slots(max_inflight, leases), budget=budget)
        tier.on_timeout = self._on_timeout
        return tier

    # -- lifecycle --------------------------------------------------------------------

    async def start(self, *, process: str = "runbot") -> DetectionResult:
        await self.recorder.start()
        config = self.config
        fresh = await self._init_shared()
        if self.budget is not None:
            await self.budget.start()
        result = await detect(self.local.provider, mode=config.mode, within=config.detect_timeout)
        self.detection = result
        log_detection(result, openai_model=self.openai.provider.model if self.openai else None)
        self.recorder.record_boot(
            mode=config.mode,
            found=result.found,
            endpoint=result.endpoint,
            model=result.model,
            latency_ms=result.latency_ms,
            error=result.error,
            process=process,
        )
        if not result.skipped:
            self.recorder.record_probe(
                ProbeResult(
                    tier="local",
                    url=result.endpoint,
                    ok=result.found,
                    latency_ms=result.latency_ms,
                    models=result.models,
                    error=result.error,
                    detail=result.detail or (f"model {result.model}" if result.model else ""),
                ),
                Probe.Kind.BOOT,
            )
        if not result.found and config.mode == "auto":
            # The spec's promise: no network call per message while the LLM is known absent.
            # The "at start" row below says so; a shared record another worker made gets no such
            # row from this one, so the change is recorded as it happens instead.
            await self.local.breaker.force_open(
                result.error or "NotDetected", result.detail, notify=not fresh.get("local", True)
            )
        elif result.found:
            await self._warm_up_at_boot()
        if self.openai is None and config.mode != "disabled":
            log.info("[MODEL] no OpenAI key configured: the OpenAI tier is skipped")
        for tier, state in self.states().items():
            # With shared state, only the worker that created a tier's record writes its first
            # state: the dashboard reads one stream per tier, not one per worker.
            # A tier with no shared record (not configured) follows the local tier's record.
            if fresh.get(tier, fresh.get("local", True)):
                self.recorder.record_tier_event(tier, state, self._last_error(tier, state), "at start")
        self.monitor.start()
        return result

    async def _init_shared(self) -> dict[str, bool]:
        fresh: dict[str, bool] = {}
        for tier in self.tiers:
            store = tier.breaker.store
            if isinstance(store, RedisStore):
                fresh[tier.name] = await store.init()
                await tier.breaker.tick()
        return fresh

    async def _warm_up_at_boot(self) -> None:
        """A found model answers one completion before chat relies on it (LM Studio loads on demand).

        Boot waits for it at most as long as detection may take; past that the tier is
        skipped ("warming") until the warm-up returns, and the bot starts anyway.
        """
        if self.local.breaker.state == "cooling":
            return  # another worker was told to wait (shared state)
        # Down for the other workers too (shared state) is no reason to wait for a probe: the
        # model answered detection here, and a warm-up is what a probe would start. One already
        # out elsewhere ("warming") keeps its slot, and this returns at once.
        task = await self.warmups.trigger(self.local, skip_meanwhile=False)
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=self.config.detect_timeout)
        if not done:
            await self.local.breaker.begin_warming()

    async def stop(self) -> None:
        await self.monitor.stop()
        await self.warmups.stop()
        for tier in self.tiers:
            await tier.provider.aclose()
        if self.budget is not None:
            await self.budget.aclose()
        if self.shared is not None:
            await self.shared.aclose()
        await self.recorder.stop()

    # -- the hot path -----------------------------------------------------------------

    async def complete(
        self,
        *,
        intent: str,
        system_prompt: str,
        prompt: str,
        platform: str,
        channel: str = "",
        user: str = "",
        max_chars: int = 500,
    ) -> CascadeResult:
        started = time.monotonic()
        try:
            result = await self.cascade.run(system_prompt=system_prompt, prompt=prompt, max_chars=max_chars)
        except Exception:
            # A bug here must cost one fallback phrase, not the chat handler.
            log.exception("[MODEL] cascade failed unexpectedly")
            result = CascadeResult(
                None, "fallback", round((time.monotonic() - started) * 1000, 2), {"cascade": "InternalError"}
            )
        self.recorder.record_call(
            platform=platform, intent=intent, result=result, channel=channel, user=user, text=prompt
        )
        return result

    # -- status -----------------------------------------------------------------------

    async def probe_all(self) -> list[ProbeResult]:
        """Probe every configured tier now (llmstatus, the dashboard); feeds breakers and history."""
        return await HealthMonitor(
            self.tiers,
            interval=self.config.probe_interval,
            kind=self.config.probe_kind,
            recorder=self.recorder,
        ).probe_all(force=True)

    def states(self) -> dict[str, str]:
        """tier -> "up", "down", "cooling" or "not_configured"."""
        if self.config.mode == "disabled":
            return {"local": NOT_CONFIGURED, "openai": NOT_CONFIGURED}
        openai = self.openai.breaker.state if self.openai else NOT_CONFIGURED
        if openai == "up" and self.budget is not None and self.budget.exhausted:
            openai = TierEvent.State.BUDGET.value
        return {"local": self.local.breaker.state, "openai": openai}

    def _last_error(self, tier: str, state: str) -> str:
        if state == NOT_CONFIGURED:
            return ""
        found = next((t for t in self.tiers if t.name == tier), None)
        return found.breaker.last_error if found is not None and state != "up" else ""

    def _on_state_change(self, change: StateChange) -> None:
        self.recorder.record_tier_event(change.tier, change.state, change.error, change.detail)

    def _on_budget(self, state: str, detail: str) -> None:
        self.recorder.record_tier_event("openai", state, "Budget" if state != "up" else "", detail)

    async def _on_timeout(self, tier: CascadeTier) -> None:
        # No first token: the model may be loading. One background completion finds out.
        await self.warmups.trigger(tier, skip_meanwhile=True)
