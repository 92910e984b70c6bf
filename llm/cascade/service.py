"""`LLMService`: what the rest of the project talks to.

It wires the tiers (provider + breaker + slots), boot detection, warm-ups,
background probes, the paid tier's daily budget and the history recorder, and
answers `complete()` without ever raising. With `redis_url` (REDIS_URL), breakers and
in-flight bounds are shared by every worker (`llm.shared`). The admin's live switches
(`llm.cascade.switches`) turn the LLM off, pause it or change its mode while it runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from llm.cascade.breaker import BreakerRecord, BreakerState, BreakerStore, CircuitBreaker, StateChange
from llm.cascade.budget import DailyBudget
from llm.cascade.cascade import Cascade, CascadeTier
from llm.cascade.config import OPENAI_DEFAULT_BASE_URL, LLMConfig, load_config
from llm.cascade.detection import DetectionResult, detect, log_detection
from llm.cascade.health import HealthMonitor
from llm.cascade.providers import Clocks, Provider
from llm.cascade.results import CascadeResult, ProbeResult
from llm.cascade.shared import RedisStore, SharedLeases, SharedRedis, tier_key
from llm.cascade.slots import Slots
from llm.cascade.switches import Overrides, Switches, SwitchWatcher, effective, live_switches
from llm.cascade.warmup import WarmUps
from llm.history.recorder import HistoryRecorder
from llm.history.scopes import scope_of
from llm.models import Probe, TierEvent, TierStatus
from serdabot.database import reconnecting
from serdabot.process import role
from serdabot.redact import register_secret

log = logging.getLogger("llm.service")

NOT_CONFIGURED = TierEvent.State.NOT_CONFIGURED.value
# `start(process=...)` of the bot itself (runbot) and of console runs (chat): the ones whose
# stop ends the tiers' time in their history.
OWN_ENTRY_POINTS = frozenset({"runbot", "chat"})
# States a live switch or a stop sets; nothing but the next switch or start ends them.
SWITCH_STATES = frozenset({TierEvent.State.PAUSED, TierEvent.State.DISABLED, TierEvent.State.STOPPED})
# States in which a tier has no error of its own to show.
_NO_ERROR = frozenset({NOT_CONFIGURED, TierEvent.State.DISABLED.value, TierEvent.State.PAUSED.value})


class LLMService:
    def __init__(
        self,
        config: LLMConfig,
        recorder: HistoryRecorder | None = None,
        *,
        clock: Callable[[], float] = time.time,
        redis_url: str | None = None,
        today: Callable[[], datetime] = timezone.localtime,
        switches: SwitchWatcher | None = None,
    ) -> None:
        self.config = config
        self.switches = live_switches if switches is None else switches
        # What applies now: the environment's mode under the admin's switches as last read.
        self.live = effective(config, self.switches.current)
        self._applying = asyncio.Lock()  # one switch applied at a time, and none once stopping
        self._watching = False
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
        # Every configured tier, for probes and llmstatus; the cascade uses none while off.
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
            [] if self.live.off else self.tiers,
            deadline=config.deadline,
            max_tokens=config.max_tokens,
            clocks=Clocks(config.first_token_timeout, config.stall_timeout, config.timeout),
        )
        self.monitor = HealthMonitor(
            self.tiers,  # started only while the LLM is on
            interval=config.probe_interval,
            kind=config.probe_kind,
            recorder=self.recorder,
            warmups=self.warmups,
        )
        self.detection: DetectionResult | None = None
        self._process = ""

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
        self._process = process
        await self.recorder.start()
        config = self.config
        fresh = await self._init_shared()
        if self.budget is not None:
            await self.budget.start()
        # The admin's switches before detection: a paused GPU gets no request at all. The
        # database down leaves the last values read (the environment's, in a new process).
        await self.switches.read()
        live = self.live = effective(config, self.switches.current)
        self.cascade.tiers = [] if live.off else self.tiers
        if live.off:
            result = DetectionResult(
                live.llm_mode, False, self.local.provider.url, skipped=True, detail=live.why
            )
            log.info("%s: no model will be called, fallback phrases only", live.why)
        else:
            result = await detect(self.local.provider, mode=live.llm_mode, within=config.detect_timeout)
            log_detection(result, openai_model=self.openai.provider.model if self.openai else None)
        self.detection = result
        self.recorder.record_boot(
            mode=live.off or live.llm_mode,
            found=result.found,
            endpoint=result.endpoint,
            model=result.model,
            latency_ms=result.latency_ms,
            error=result.error,
            process=process,
        )
        if not result.skipped:
            self._record_detection(result, Probe.Kind.BOOT)
        if not result.found and not result.skipped and live.llm_mode == "auto":
            # The spec's promise: no network call per message while the LLM is known absent.
            # The "at start" row below says so; a shared record another worker made gets no such
            # row from this one, so the change is recorded as it happens instead.
            await self.local.breaker.force_open(
                result.error or "NotDetected", result.detail, notify=not fresh.get("local", True)
            )
        elif result.found:
            await self._warm_up_at_boot()
        if self.openai is None and not live.off:
            log.info("[MODEL] no OpenAI key configured: the OpenAI tier is skipped")
        stored = await self._stored_states() if not all(fresh.values()) else {}
        for tier, state in self.states().items():
            # With shared state, only the worker that created a tier's record writes its first
            # state: the dashboard reads one stream per tier, not one per worker. A tier with no
            # shared record (not configured) follows the local tier's record. Whatever the
            # record, a switch state (paused, disabled) and the end of one that was flipped while
            # every process was stopped are recorded: no breaker change would ever close it.
            switched = state == live.off or stored.get(tier, state) in SWITCH_STATES
            if fresh.get(tier, fresh.get("local", True)) or (switched and stored.get(tier) != state):
                detail = f"at start: {live.why}" if state == live.off else "at start"
                self.recorder.record_tier_event(tier, state, self._last_error(tier, state), detail)
        if not live.off:
            self.monitor.start()
        self.switches.listeners.append(self._switched)
        self.switches.start()
        self._watching = True
        # A change read by another user of the watcher since the read above was not announced here.
        await self._switched(self.switches.current)
        return result

    async def _stored_states(self) -> dict[str, str]:
        """Each tier's latest recorded state in this process's scope; {} when the database is away."""

        def read() -> dict[str, str]:
            with reconnecting():
                rows = TierStatus._default_manager.filter(scope=scope_of(role()))
                return dict(rows.values_list("tier", "state"))

        if self.recorder.outage_ongoing:
            return {}  # known away: no second connect timeout at start
        try:
            return await sync_to_async(read)()
        except Exception:  # unreachable, or not migrated (a script): start without it
            log.debug("tier states not read at start", exc_info=True)
            return {}

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
        if self._watching:
            async with self._applying:  # a switch being applied ends first: it may start probes
                self._watching = False
            self.switches.listeners.remove(self._switched)
            await self.switches.stop()
        await self.monitor.stop()
        await self.warmups.stop()
        if self.shared is None and self._process in OWN_ENTRY_POINTS:
            # The only process asking these tiers stops: the time until the next start is
            # nobody's downtime. (With shared state other workers may go on answering; a
            # script or a test using the service is not the bot stopping.)
            for name in self.states():
                self.recorder.record_tier_event(name, TierEvent.State.STOPPED, "", "the bot stopped")
        for tier in self.tiers:
            await tier.provider.aclose()
        if self.budget is not None:
            await self.budget.aclose()
        if self.shared is not None:
            await self.shared.aclose()
        await self.recorder.stop()

    # -- live switches ----------------------------------------------------------------

    async def _switched(self, overrides: Overrides) -> None:
        """The admin's row changed (llm.cascade.switches calls this on the event loop)."""
        async with self._applying:
            if not self._watching:
                return  # stopping: nothing may start probes again
            now = effective(self.config, overrides)
            before = self.live
            if now == before:
                return
            # Set first: the next message, states() and the breaker listener follow it at once.
            self.live = now
            if now.off:
                await self._switch_off(before, now)
            elif before.off:
                await self._switch_on(before, now)
            elif now.llm_mode != before.llm_mode:
                await self._follow_mode(now.llm_mode)

    async def _switch_off(self, before: Switches, now: Switches) -> None:
        # A message already in the cascade finishes; the next one gets a fallback phrase.
        self.cascade.tiers = []
        if not before.off:
            # Nothing may load a paused GPU: no probe, and a warm-up out is called back.
            await self.monitor.stop()
            await self.warmups.stop()
        if (now.off, now.why) == (before.off, before.why):
            return
        log.warning("[MODEL] %s: no model is called until it is switched back on", now.why)
        for tier in self.tiers:
            self.recorder.record_tier_event(tier.name, now.off, "", now.why)

    async def _switch_on(self, before: Switches, now: Switches) -> None:
        detail = (
            "unpaused in the admin" if before.off == TierEvent.State.PAUSED else "switched on in the admin"
        )
        log.warning("[MODEL] %s: the LLM is used again (LLM_MODE=%s)", detail, now.llm_mode)
        try:
            # What boot does, again: the LLM may have been closed, or its model unloaded, for the
            # game. The warm-up is not waited for: a model loading after a pause is no outage.
            found = await self._look_for_local(now.llm_mode, notify=False)
            if found:
                await self.warmups.trigger(self.local, skip_meanwhile=False)
            elif now.llm_mode == "enabled":
                await self._trial_now()
        finally:
            # Whatever failed above, the tiers and their probes come back and the history says
            # where each tier stands: a switch turned on must never leave chat on phrases alone,
            # nor the page on "Paused".
            self.cascade.tiers = self.tiers
            self.monitor.start()
            states = self.states()
            for tier in self.tiers:
                state = states[tier.name]
                self.recorder.record_tier_event(tier.name, state, self._last_error(tier.name, state), detail)

    async def _follow_mode(self, mode: str) -> None:
        """auto <-> enabled while the LLM is on.

        The two differ in what a local tier known down costs chat: auto skips it (boot
        detection opens its breaker when nothing answers), enabled tries it anyway, breakers
        still applying. Switching to auto does what auto does at boot: one GET /models, and
        the breaker opened at once if nothing answers. The breaker has no "try it anyway"
        state; switching to enabled does the closest real thing it allows (`_trial_now`).
        """
        if mode == "auto":
            await self._look_for_local(mode, notify=True)
        else:
            await self._trial_now()

    def _record_detection(self, result: DetectionResult, kind: str) -> None:
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
            kind,
        )

    async def _look_for_local(self, mode: str, *, notify: bool) -> bool:
        """Boot detection again; in auto mode a local LLM not found is skipped from now on."""
        result = await detect(self.local.provider, mode=mode, within=self.config.detect_timeout)
        self._record_detection(result, Probe.Kind.MODELS)
        if not result.found and mode == "auto":
            await self.local.breaker.force_open(result.error or "NotDetected", result.detail, notify=notify)
        return result.found

    async def _trial_now(self) -> None:
        """LLM_MODE=enabled: a local tier known down is tried anyway.

        An open breaker lets one trial message through once its cool-down is over; ending
        the cool-down now makes the next message that trial, with no "up" recorded that no
        answer proved. A trial that fails opens the breaker again for a full cool-down: the
        breakers still apply, as LLM_MODE=enabled says.
        """
        breaker = self.local.breaker

        def end_cooldown(record: BreakerRecord) -> None:
            if record.state == BreakerState.OPEN.value:
                record.opened_at = min(record.opened_at, breaker.clock() - breaker.cooldown)

        await breaker.store.update(end_cooldown)

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
        history: Sequence[tuple[str, str]] = (),
    ) -> CascadeResult:
        """`history`: the user's earlier (question, answer) exchanges, oldest first; they go
        between the system prompt and `prompt` as user and assistant messages, on every tier."""
        started = time.monotonic()
        try:
            result = await self.cascade.run(
                system_prompt=system_prompt, prompt=prompt, max_chars=max_chars, history=tuple(history)
            )
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
        """tier -> "up", "down", "cooling", "warming", "budget", "disabled", "paused" or
        "not_configured" (the OpenAI tier without a key, whatever the switches say)."""
        off = self.live.off
        if self.openai is None:
            openai = NOT_CONFIGURED
        elif off:
            openai = off
        else:
            openai = self.openai.breaker.state
            if openai == "up" and self.budget is not None and self.budget.exhausted:
                openai = TierEvent.State.BUDGET.value
        return {"local": off or self.local.breaker.state, "openai": openai}

    def _last_error(self, tier: str, state: str) -> str:
        if state in _NO_ERROR:
            return ""
        found = next((t for t in self.tiers if t.name == tier), None)
        return found.breaker.last_error if found is not None and state != "up" else ""

    def _on_state_change(self, change: StateChange) -> None:
        if self.live.off:
            # A call out when the LLM was paused ended since: the history shows the pause (a pause
            # is not downtime) until the LLM is back on, which records each tier's state then.
            return
        # A shared (Redis) breaker is the bot's: a console run (chat, llmstatus) that happens to
        # make its change is the only one to see it, and records it in the bot's history.
        as_role = "bot" if self.shared is not None and role() == "console" else None
        self.recorder.record_tier_event(change.tier, change.state, change.error, change.detail, role=as_role)

    def _on_budget(self, state: str, detail: str) -> None:
        if self.live.off:
            return  # as above: switched back on, the budget's state is recorded with the rest
        self.recorder.record_tier_event("openai", state, "Budget" if state != "up" else "", detail)

    async def _on_timeout(self, tier: CascadeTier) -> None:
        if self.live.off:
            return  # a call out when the LLM was paused: no warm-up may load the GPU now
        # No first token: the model may be loading. One background completion finds out.
        await self.warmups.trigger(tier, skip_meanwhile=True)
