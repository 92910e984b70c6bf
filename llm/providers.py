"""One `Provider` per tier: an OpenAI-compatible server reached over HTTP.

httpx directly rather than the openai SDK: every timeout is explicit, nothing is
retried behind our back, and each failure keeps a precise class (a refused
connection, a truncated body and a malformed reply are different incidents).
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from llm.errors import InvalidAnswer, ProviderError
from llm.results import ProbeResult

log = logging.getLogger("llm.providers")

# A reply larger than this is not a chat answer: stop reading so memory stays bounded.
MAX_BODY_BYTES = 1024 * 1024
# A Retry-After further away than this is treated as this (a bogus header must not
# disable a tier for days).
MAX_RETRY_AFTER = 600.0


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish_reason: str
    model: str


class Provider:
    def __init__(
        self,
        tier: str,
        base_url: str,
        *,
        api_key: str,
        model: str = "",
        timeout: float = 10.0,
        connect_timeout: float = 2.0,
        max_connections: int = 4,
        token_param: str = "max_tokens",
        trust_env: bool = False,
    ) -> None:
        self.tier = tier
        self.url = base_url.rstrip("/")
        self.configured_model = model
        self.resolved_model = ""
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.token_param = token_param
        self._client = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "SerdaBot"},
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            # Calls are already bounded per tier; room for probes means no wait for a pooled connection.
            limits=httpx.Limits(
                max_connections=max_connections + 2, max_keepalive_connections=max_connections
            ),
            trust_env=trust_env,
        )

    def __repr__(self) -> str:
        return f"<Provider {self.tier} {self.url}>"

    @property
    def model(self) -> str:
        return self.configured_model or self.resolved_model

    async def aclose(self) -> None:
        await self._client.aclose()

    async def list_models(self, *, timeouts: httpx.Timeout | None = None) -> tuple[str, ...]:
        data = await self._request("GET", "/models", timeouts=timeouts)
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ProviderError("MalformedJSON", "no `data` list in the /models reply")
        return tuple(str(item["id"]) for item in items if isinstance(item, dict) and "id" in item)

    def check_models(self, models: tuple[str, ...]) -> str:
        """The model this tier will use, given what the server lists; remembers it."""
        if not models:
            raise ProviderError("NoModels", "the server lists no model", opens_at_once=True)
        if self.configured_model:
            if self.configured_model not in models:
                raise ProviderError(
                    "ModelNotFound",
                    f"model {self.configured_model!r} not listed (found: {', '.join(models[:5])})",
                    opens_at_once=True,
                )
            return self.configured_model
        self.resolved_model = models[0]
        return self.resolved_model

    async def complete(self, *, system_prompt: str, prompt: str, max_tokens: int) -> Completion:
        model = self.model or self.check_models(await self.list_models())
        messages = [{"role": "user", "content": prompt}]
        if system_prompt:
            messages.insert(0, {"role": "system", "content": system_prompt})
        body = {"model": model, "messages": messages, self.token_param: max_tokens, "stream": False}
        data = await self._request("POST", "/chat/completions", json_body=body)
        return _parse_completion(data, model)

    async def probe(self, kind: str) -> ProbeResult:
        started = time.perf_counter()
        try:
            if kind == "completion":
                completion = await self.complete(system_prompt="", prompt="ping", max_tokens=1)
                models: tuple[str, ...] = (completion.model,)
                detail = f"model {completion.model} answered"
            else:
                models = await self.list_models()
                detail = f"model {self.check_models(models)}"
        except InvalidAnswer as exc:
            if exc.kind != "EmptyAnswer":  # one token may well be blank: the server still answered
                return self._probe_failed(exc, kind, started)
            models, detail = (self.model,), f"model {self.model} answered"
        except ProviderError as exc:
            return self._probe_failed(exc, kind, started)
        return ProbeResult(
            tier=self.tier,
            url=self.url,
            ok=True,
            latency_ms=_ms(started),
            models=models,
            detail=detail,
            kind=kind,
        )

    def _probe_failed(self, exc: ProviderError, kind: str, started: float) -> ProbeResult:
        return ProbeResult(
            tier=self.tier,
            url=self.url,
            ok=False,
            latency_ms=_ms(started),
            error=exc.kind,
            detail=exc.detail,
            kind=kind,
            opens_at_once=exc.opens_at_once,
            retry_after=exc.retry_after,
        )

    async def _request(
        self, method: str, path: str, *, json_body: Any = None, timeouts: httpx.Timeout | None = None
    ) -> Any:
        started = time.perf_counter()
        try:
            async with self._client.stream(
                method, path, json=json_body, timeout=timeouts or httpx.USE_CLIENT_DEFAULT
            ) as response:
                raw = await _read_capped(response)
        except httpx.TimeoutException as exc:
            waited = f"no answer from {self.url}{path} within {time.perf_counter() - started:.1f} s"
            raise ProviderError(type(exc).__name__, waited, timed_out=True) from None
        except httpx.ConnectError as exc:
            # Nothing listens (or the host is unknown): retrying on the next message will not help.
            raise ProviderError("ConnectError", _describe(exc), opens_at_once=True) from None
        except httpx.HTTPError as exc:
            raise ProviderError(type(exc).__name__, _describe(exc)) from None
        if response.status_code >= 400:
            raise _status_error(response.status_code, response.headers, raw)
        try:
            return json.loads(raw)
        except ValueError:
            raise ProviderError("MalformedJSON", f"not JSON: {raw[:80]!r}") from None


async def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ProviderError("ResponseTooLarge", f"more than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_completion(data: Any, model: str) -> Completion:
    if not isinstance(data, dict):
        raise ProviderError("MalformedJSON", "the reply is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        if "error" in data:
            raise ProviderError("ErrorBody", _error_message(data)[:200])
        raise InvalidAnswer("EmptyChoices", "the reply has no choices")
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str) or not content.strip():
        raise InvalidAnswer("EmptyAnswer", "the answer has no text")
    return Completion(
        text=content,
        finish_reason=str(choice.get("finish_reason") or ""),
        model=str(data.get("model") or model),
    )


def _status_error(status: int, headers: httpx.Headers, raw: bytes) -> ProviderError:
    try:
        message = _error_message(json.loads(raw))
    except ValueError:
        message = raw[:200].decode("utf-8", "replace")
    lowered = message.lower()
    if status == 429:
        return ProviderError(
            "RateLimited", message[:200], retry_after=parse_retry_after(headers.get("retry-after"))
        )
    if (
        status in (400, 404)
        and "model" in lowered
        and any(
            words in lowered
            for words in ("not found", "does not exist", "not loaded", "model_not_found", "no model")
        )
    ):
        return ProviderError("ModelNotFound", message[:200], opens_at_once=True)
    # A refused key will not become valid by retrying.
    return ProviderError(f"HTTP{status}", message[:200], opens_at_once=status in (401, 403))


def _error_message(data: Any) -> str:
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            parts = [str(error.get(k)) for k in ("message", "code") if error.get(k)]
            return " ".join(parts) or json.dumps(error)[:200]
        return str(error)
    return str(data)[:200]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date); None if absent or unusable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if seconds != seconds or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
