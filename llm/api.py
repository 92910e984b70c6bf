"""The original SerdaBot's Python API (`llm_detector`, `call_model`), over this project's llm app.

Code written against the seed runs with only its import path changed: thin functions,
callable from a Django shell or a script. The bot itself does not use them; it talks to
its one long-lived `LLMService`.

`config` is optional everywhere: None means this project's settings (the environment, then
the YAML file named by SERDABOT_CONFIG). A dict is read like that YAML file (`bot.llm.*`,
`openai.*`, and the original's `bot.model_endpoint`), and the environment still wins.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping
from typing import Any

import httpx

from llm.cascade.config import LLMConfig, config_from, load_config
from llm.cascade.service import LLMService

DEFAULT_MODELS_URL = "http://localhost:1234/v1/models"
DETECT_TIMEOUT = 2.0
# The spec's two messages, to the character (two spaces after the warning sign).
FOUND = "✅ LLM détecté : {endpoint}"
NOT_FOUND = "⚠️  LLM non disponible → mode fallback activé"
# The `platform` call_model's calls carry in the call history.
PLATFORM = "api"

Config = Mapping[str, Any]


def config_from_mapping(config: Config | None = None, environ: Mapping[str, str] | None = None) -> LLMConfig:
    """The cascade's settings from a dict shaped like the YAML config file; None: the project's own."""
    env = os.environ if environ is None else environ
    if config is None:
        return load_config(env)
    return config_from(_with_original_keys(config), env, source="the config given")


def _with_original_keys(config: Config) -> Config:
    # The original named the local server by its completions URL: bot.model_endpoint.
    bot = config.get("bot")
    if not isinstance(bot, Mapping):
        return config
    legacy = bot.get("model_endpoint")
    found = bot.get("llm")
    llm: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    if not isinstance(legacy, str) or not legacy.strip() or llm.get("endpoint"):
        return config
    base = legacy.strip().rstrip("/").removesuffix("/chat/completions").removesuffix("/models")
    return {**config, "bot": {**bot, "llm": {**llm, "endpoint": base}}}


# -- boot detection, as the original's llm_detector --------------------------------------


def get_llm_mode(config: Config | None = None) -> str:
    """The LLM mode (auto, enabled or disabled): LLM_MODE first, then `bot.llm.enabled`, else auto."""
    return config_from_mapping(config).mode


def is_llm_available(endpoint: str | None = None, timeout: float = DETECT_TIMEOUT) -> bool:
    """Does an OpenAI-compatible server answer GET /models there, within `timeout` seconds?

    `endpoint` is the models URL (the original's default: http://localhost:1234/v1/models) or
    the API base it hangs off; None: this project's LLM_ENDPOINT. Synchronous (httpx, no event
    loop), so it serves scripts as well as code already inside a loop.
    """
    if endpoint is None:
        settings = load_config()
        return _answers(_models_url(settings.endpoint), timeout, settings.api_key)
    return _answers(_models_url(endpoint), timeout, "")


def check_llm_status(config: Config | None = None) -> tuple[bool, str]:
    """(available, the spec's message) for the configured local LLM, asked within 2 seconds."""
    settings = config_from_mapping(config)
    available = _answers(_models_url(settings.endpoint), settings.detect_timeout, settings.api_key)
    return available, (FOUND.format(endpoint=settings.endpoint) if available else NOT_FOUND)


def _models_url(endpoint: str) -> str:
    url = endpoint.strip().rstrip("/")
    return url if url.endswith("/models") else f"{url}/models"


def _answers(url: str, timeout: float, api_key: str) -> bool:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        # trust_env=False: a local server is never reached through the environment's proxy.
        with httpx.Client(timeout=httpx.Timeout(timeout), trust_env=False) as client:
            response = client.get(url, headers=headers)
            # A body that is not JSON is not an OpenAI-compatible server (a portal, a proxy page).
            response.json()
    except (httpx.HTTPError, httpx.InvalidURL, ValueError):  # a typo in the URL is "not available"
        return False
    return response.is_success


# -- the cascade, as the original's call_model --------------------------------------------

# One started service per event loop and configuration: boot detection and the background
# probes run once, and the breakers remember an outage from one call to the next.
_services_lock = threading.Lock()
_services: dict[asyncio.AbstractEventLoop, dict[LLMConfig, asyncio.Task[LLMService]]] = {}


async def call_model(
    prompt: str,
    config: Config | None = None,
    *,
    user: str = "",
    mode: str = "ask",
    system_prompt: str | None = None,
    channel: str = "",
    max_chars: int = 500,
) -> str | None:
    """The cascade's answer (local LLM, then OpenAI), or None when no tier answered.

    `mode` is the intent: "ask" or "chill" pick the bot's system prompt, unless
    `system_prompt` is given. The call is recorded in the call history (platform "api").
    """
    service = await _service(config_from_mapping(config))
    if system_prompt is None:
        # The bot's prompts live with the chat code; read at call time, so the llm app
        # itself still loads without it.
        from chatbridge.prompts import load_prompts

        prompts = load_prompts()
        system_prompt = prompts.get(mode, prompts["ask"])
    result = await service.complete(
        intent=mode,
        system_prompt=system_prompt,
        prompt=prompt,
        platform=PLATFORM,
        channel=channel,
        user=user,
        max_chars=max_chars,
    )
    # Written now: a script's asyncio.run() ends right after, before the writer's next batch.
    await service.recorder.flush()
    return result.text


async def shutdown() -> None:
    """Stop what call_model started on this event loop: probes, HTTP clients, history writer."""
    loop = asyncio.get_running_loop()
    with _services_lock:
        started = _services.pop(loop, {})
    for task in started.values():
        if task.cancelled():
            continue
        try:
            service = await task
        except Exception:
            continue  # its start failed (and was raised to the caller then): nothing to stop
        await service.stop()


async def _service(config: LLMConfig) -> LLMService:
    loop = asyncio.get_running_loop()
    with _services_lock:
        # A closed loop's services died with it (a shell runs one asyncio.run per call).
        for closed in [other for other in _services if other.is_closed()]:
            del _services[closed]
        started = _services.setdefault(loop, {})
        task = started.get(config)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = started[config] = loop.create_task(_start(config))
    # Shielded: a caller cancelled mid-start must not cancel the start other callers await.
    return await asyncio.shield(task)


async def _start(config: LLMConfig) -> LLMService:
    service = LLMService(config)
    await service.start(process="api")
    return service
