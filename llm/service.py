"""`LLMService`: what the rest of the project talks to.

It wires the tiers (provider + breaker + slots), boot detection, background probes
and the history recorder, and answers `complete()` without ever raising.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from llm.breaker import CircuitBreaker, StateChange
from llm.cascade import Cascade, CascadeTier
from llm.config import OPENAI_DEFAULT_BASE_URL, LLMConfig, load_config
from llm.detection import DetectionResult, detect, log_detection
from llm.health import HealthMonitor
from llm.history import HistoryRecorder
from llm.models import Probe, TierEvent
from llm.providers import Provider
from llm.results import CascadeResult, ProbeResult
from llm.slots import Slots

log = logging.getLogger("llm.service")

NOT_CONFIGURED = TierEvent.State.NOT_CONFIGURED.value


class LLMService:
    def __init__(
        self,
        config: LLMConfig,
        recorder: HistoryRecorder | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.recorder = recorder if recorder is not None else HistoryRecorder()
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
                trust_env=True,
            )
            self.tiers.append(self.openai)
        self.cascade = Cascade(
            [] if config.mode == "disabled" else self.tiers,
            deadline=config.deadline,
            max_tokens=config.max_tokens,
        )
        self.monitor = HealthMonitor(
            self.cascade.tiers, interval=config.probe_interval, kind=config.probe_kind, recorder=self.recorder
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
            max_connections=max_inflight,
            token_param=token_param,
            trust_env=trust_env,
        )
        breaker = CircuitBreaker(
            name,
            failure_threshold=config.breaker_failures,
            cooldown=config.breaker_cooldown,
            retry_after_default=config.retry_after_default,
            clock=clock,
            listener=self._on_state_change,
        )
        return CascadeTier(
            name, provider, breaker, Slots(max_inflight), budget=config.timeout + config.connect_timeout
        )

    # -- lifecycle --------------------------------------------------------------------

    async def start(self, *, process: str = "runbot") -> DetectionResult:
        await self.recorder.start()
        config = self.config
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
            self.local.breaker.force_open(result.error or "NotDetected", result.detail, notify=False)
        if self.openai is None and config.mode != "disabled":
            log.info("[MODEL] no OpenAI key configured: the OpenAI tier is skipped")
        for tier, state in self.states().items():
            self.recorder.record_tier_event(tier, state, self._last_error(tier, state), "at start")
        self.monitor.start()
        return result

    async def stop(self) -> None:
        await self.monitor.stop()
        for tier in self.tiers:
            await tier.provider.aclose()
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
        return {
            "local": self.local.breaker.state,
            "openai": self.openai.breaker.state if self.openai else NOT_CONFIGURED,
        }

    def _last_error(self, tier: str, state: str) -> str:
        if state == NOT_CONFIGURED:
            return ""
        found = next((t for t in self.tiers if t.name == tier), None)
        return found.breaker.last_error if found is not None and state != "up" else ""

    def _on_state_change(self, change: StateChange) -> None:
        self.recorder.record_tier_event(change.tier, change.state, change.error, change.detail)
