"""Boot detection: is the local LLM there? Asked once, at start, within 2 seconds."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from llm.cascade.errors import ProviderError
from llm.cascade.providers import Provider

log = logging.getLogger("llm.detection")


@dataclass(frozen=True, slots=True)
class DetectionResult:
    mode: str
    found: bool
    endpoint: str
    model: str = ""
    models: tuple[str, ...] = ()
    latency_ms: float | None = None
    error: str = ""
    detail: str = ""
    skipped: bool = False  # LLM_MODE=disabled: nothing was asked


async def detect(provider: Provider, *, mode: str, within: float) -> DetectionResult:
    if mode == "disabled":
        return DetectionResult(mode, False, provider.url, skipped=True, detail="LLM_MODE=disabled")
    started = time.perf_counter()
    try:
        async with asyncio.timeout(within):
            models = await provider.list_models(within=within)
            model = provider.check_models(models)
    except ProviderError as exc:
        return DetectionResult(
            mode, False, provider.url, latency_ms=_ms(started), error=exc.kind, detail=exc.detail
        )
    except TimeoutError:
        return DetectionResult(
            mode,
            False,
            provider.url,
            latency_ms=_ms(started),
            error="Deadline",
            detail=f"no answer in {within:g} s",
        )
    return DetectionResult(mode, True, provider.url, model=model, models=models, latency_ms=_ms(started))


def log_detection(result: DetectionResult, *, openai_model: str | None) -> None:
    then = f"OpenAI ({openai_model}) then fallback phrases" if openai_model else "fallback mode on"
    if result.skipped:
        log.info("LLM_MODE=disabled: no model will be called, fallback phrases only")
    elif result.found:
        log.info("LLM found at %s (model %s)", result.endpoint, result.model)
    elif result.mode == "enabled":
        log.warning(
            "LLM not available at %s (%s): LLM_MODE=enabled, the cascade tries it anyway",
            result.endpoint,
            result.error,
        )
    else:
        log.warning(
            "LLM not available at %s (%s) -> %s; it is probed in the background",
            result.endpoint,
            result.error,
            then,
        )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
