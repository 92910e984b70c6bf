"""One `Provider` per tier: an OpenAI-compatible server reached through the official SDK.

`openai.AsyncOpenAI` with `max_retries=0` and explicit httpx timeouts: nothing is
retried behind the cascade's back. Every chat completion is streamed, under two
clocks of our own: one for the first token, one for the gap between two chunks (a
server that drips a byte a second never trips an HTTP read timeout). The SDK's typed
errors are mapped onto the error classes the breaker and the history use
(`llm.errors`), so a refused connection, a 429, a refused key and a cut stream stay
different incidents.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI

from llm.cascade.errors import InvalidAnswer, ProviderError
from llm.cascade.results import ProbeResult
from serdabot.redact import redact

log = logging.getLogger("llm.providers")

# An answer longer than this is not a chat answer: stop reading so memory stays bounded.
MAX_ANSWER_CHARS = 64 * 1024
# A Retry-After further away than this is treated as this (a bogus header must not
# disable a tier for days).
MAX_RETRY_AFTER = 600.0
# What a completion probe or a warm-up asks (one token back).
PROBE_PROMPT = "ping"
_MODEL_MISSING = ("not found", "does not exist", "not loaded", "model_not_found", "no model")


@dataclass(frozen=True, slots=True)
class Clocks:
    """The time limits of one streamed completion, in seconds."""

    first_token: float
    stall: float
    total: float


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish_reason: str
    model: str
    first_token_ms: float | None = None
    # As the server reported them (None: not reported).
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


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
        first_token_timeout: float = 5.0,
        stall_timeout: float = 3.0,
        max_connections: int = 4,
        token_param: str = "max_tokens",
        include_usage: bool = False,
        trust_env: bool = False,
    ) -> None:
        self.tier = tier
        self.url = base_url.rstrip("/")
        self.configured_model = model
        self.resolved_model = ""
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.clocks = Clocks(first_token_timeout, stall_timeout, timeout)
        self.token_param = token_param
        self.include_usage = include_usage
        self._client = AsyncOpenAI(
            base_url=self.url,
            api_key=api_key,
            max_retries=0,
            # The SDK runs on httpx2 (its own fork of httpx): timeouts and errors are its types.
            # Our own clocks bound a streamed answer; httpx's read timeout only has to catch
            # a connection that went silent, so it is the longer of the two.
            timeout=httpx2.Timeout(max(first_token_timeout, stall_timeout), connect=connect_timeout),
            default_headers={"User-Agent": "SerdaBot"},
            http_client=openai.DefaultAsyncHttpxClient(
                # Calls are already bounded per tier; room for probes means no wait for a pooled connection.
                limits=httpx2.Limits(
                    max_connections=max_connections + 2, max_keepalive_connections=max_connections
                ),
                trust_env=trust_env,
            ),
        )

    def __repr__(self) -> str:
        return f"<Provider {self.tier} {self.url}>"

    @property
    def model(self) -> str:
        return self.configured_model or self.resolved_model

    async def aclose(self) -> None:
        await self._client.close()

    async def list_models(self, *, within: float | None = None) -> tuple[str, ...]:
        options: dict[str, Any] = {}
        if within is not None:
            options["timeout"] = httpx2.Timeout(within, connect=min(within, self.connect_timeout))
        try:
            page = await self._client.models.list(**options)
        except Exception as exc:
            raise map_error(exc, self.url, "/models") from None
        return tuple(str(item.id) for item in page.data if getattr(item, "id", None))

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

    async def complete(
        self,
        *,
        system_prompt: str,
        prompt: str,
        max_tokens: int,
        clocks: Clocks | None = None,
        on_first_token: Callable[[], Awaitable[None]] | None = None,
        history: Sequence[tuple[str, str]] = (),
    ) -> Completion:
        """Stream one answer and assemble it; raises ProviderError (or InvalidAnswer).

        `on_first_token` is awaited once, when the model shows it is working. `history`:
        earlier (question, answer) exchanges, oldest first, sent as the conversation so far.
        """
        clocks = clocks or self.clocks
        # No first token within the whole answer's time is a missing first token.
        clocks = Clocks(min(clocks.first_token, clocks.total), clocks.stall, clocks.total)
        # A model still to be found (no LLM_MODEL) is looked up within the first token's time.
        started = time.monotonic()
        model = self.model or self.check_models(await self.list_models(within=clocks.first_token))
        messages: list[dict[str, str]] = []
        if system_prompt:
            messages.append({"role": "system", "content": system_prompt})
        for question, answer in history:
            messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        messages.append({"role": "user", "content": prompt})
        extra: dict[str, Any] = {self.token_param: max_tokens}
        if self.include_usage:
            extra["stream_options"] = {"include_usage": True}
        return await self._stream(model, messages, extra, clocks, started, on_first_token)

    async def _stream(
        self,
        model: str,
        messages: list[dict[str, str]],
        extra: dict[str, Any],
        clocks: Clocks,
        started: float,
        on_first_token: Callable[[], Awaitable[None]] | None,
    ) -> Completion:
        stream: Any = None
        parts: list[str] = []
        size = 0
        finish = ""
        first_token_ms: float | None = None
        usage: Any = None
        answered_model = model
        try:
            end_at = started + clocks.total
            try:
                async with asyncio.timeout(max(started + clocks.first_token - time.monotonic(), 0.0)):
                    # The request and the response headers both count against the first token.
                    stream = await self._client.chat.completions.create(
                        model=model,
                        messages=messages,  # type: ignore[arg-type]
                        stream=True,
                        timeout=httpx2.Timeout(
                            max(clocks.first_token, clocks.stall), connect=self.connect_timeout
                        ),
                        **extra,
                    )
            except TimeoutError:
                raise _first_token_timeout(clocks) from None
            chunks: AsyncIterator[Any] = stream.__aiter__()
            while True:
                waiting_first = first_token_ms is None
                now = time.monotonic()
                phase = started + clocks.first_token - now if waiting_first else clocks.stall
                whole = end_at - now
                try:
                    async with asyncio.timeout(max(min(phase, whole), 0.0)):
                        chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    if phase > whole:
                        raise ProviderError(
                            "AnswerTimeout", f"answer not finished within {clocks.total:g} s", timed_out=True
                        ) from None
                    if waiting_first:
                        raise _first_token_timeout(clocks) from None
                    raise ProviderError(
                        "StallTimeout",
                        f"no chunk for {clocks.stall:g} s after the first token",
                        timed_out=True,
                    ) from None
                answered_model = str(getattr(chunk, "model", "") or answered_model)
                if getattr(chunk, "usage", None) is not None:
                    usage = chunk.usage
                for choice in getattr(chunk, "choices", None) or ():
                    delta = getattr(choice, "delta", None)
                    content = getattr(delta, "content", None) if delta is not None else None
                    # Reasoning models (LM Studio, DeepSeek) stream their thinking apart from the
                    # answer: not for chat, but proof the model is working, for both clocks.
                    thinking = _reasoning(delta)
                    if (content or thinking) and first_token_ms is None:
                        first_token_ms = round((time.monotonic() - started) * 1000, 2)
                    if content:
                        parts.append(content)
                        size += len(content)
                    if getattr(choice, "finish_reason", None):
                        finish = str(choice.finish_reason)
                if waiting_first and first_token_ms is not None and on_first_token is not None:
                    await on_first_token()
                if size > MAX_ANSWER_CHARS:
                    # Enough for any chat line: what follows is never read.
                    finish = finish or "length"
                    break
        except ProviderError:
            raise
        except Exception as exc:
            raise map_error(exc, self.url, "/chat/completions") from None
        finally:
            if stream is not None:
                await _close(stream)
        if not finish and not parts:
            raise InvalidAnswer("EmptyChoices", "the stream carried no answer")
        if not finish:
            raise ProviderError("Truncated", "the stream ended before the answer finished")
        text = "".join(parts)
        if not text.strip():
            raise InvalidAnswer("EmptyAnswer", "the answer has no text")
        return Completion(
            text=text,
            finish_reason=finish,
            model=answered_model,
            first_token_ms=first_token_ms,
            prompt_tokens=_tokens(usage, "prompt_tokens"),
            completion_tokens=_tokens(usage, "completion_tokens"),
        )

    async def probe(self, kind: str, *, clocks: Clocks | None = None, system_prompt: str = "") -> ProbeResult:
        started = time.perf_counter()
        try:
            if kind == "completion":
                completion = await self.complete(
                    system_prompt=system_prompt, prompt=PROBE_PROMPT, max_tokens=1, clocks=clocks
                )
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


def map_error(exc: BaseException, url: str, path: str) -> ProviderError:
    """The SDK's (and httpx2's) exceptions as the error classes the breaker and history know.

    `ProviderError` redacts every detail it is given; a detail cut shorter here is redacted
    first (a key cut in half stays a key).
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc)
    if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
        # The SDK wraps what httpx2 raised, inside a stream too: classify the cause.
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, httpx2.HTTPError):
            return _transport_error(cause, url, path)
        if isinstance(exc, openai.APITimeoutError):
            return ProviderError("ReadTimeout", f"no answer from {url}{path} in time", timed_out=True)
        # TLS torn down, a socket reset...: a glitch of this request, not "nothing listens".
        name = type(cause).__name__ if cause is not None else "APIConnectionError"
        return ProviderError("ConnectionLost", f"{name}: {cause or exc}")
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError | ValueError):
        return ProviderError("MalformedJSON", redact(f"not a valid reply: {exc}")[:200])
    if isinstance(exc, openai.APIError):
        # An error event inside the stream (`data: {"error": ...}`).
        return ProviderError("ErrorBody", redact(str(exc.message))[:200])
    if isinstance(exc, httpx2.HTTPError):
        return _transport_error(exc, url, path)
    log.warning("unexpected error from %s%s: %s", url, path, type(exc).__name__)
    return ProviderError(type(exc).__name__, redact(str(exc))[:200])


def _transport_error(exc: httpx2.HTTPError, url: str, path: str) -> ProviderError:
    if isinstance(exc, httpx2.TimeoutException):
        return ProviderError(type(exc).__name__, f"no answer from {url}{path} in time", timed_out=True)
    if isinstance(exc, httpx2.ConnectError):
        # Nothing listens (or the host is unknown): retrying on the next message will not help.
        return ProviderError("ConnectError", str(exc) or "connection refused", opens_at_once=True)
    if isinstance(exc, httpx2.RemoteProtocolError | httpx2.ReadError):
        # The server hung up mid-answer.
        return ProviderError("Truncated", str(exc) or type(exc).__name__)
    return ProviderError(type(exc).__name__, str(exc) or type(exc).__name__)


def _status_error(exc: openai.APIStatusError) -> ProviderError:
    status = exc.status_code
    # Redacted before it is matched or cut: a key cut in half stays a key.
    message = redact(_error_message(exc))[:200]
    lowered = message.lower()
    if status == 429:
        return ProviderError(
            "RateLimited", message, retry_after=parse_retry_after(exc.response.headers.get("retry-after"))
        )
    if status in (400, 404) and "model" in lowered and any(words in lowered for words in _MODEL_MISSING):
        return ProviderError("ModelNotFound", message, opens_at_once=True)
    # A refused key will not become valid by retrying.
    return ProviderError(f"HTTP{status}", message, opens_at_once=status in (401, 403))


def _error_message(exc: openai.APIStatusError) -> str:
    """The server's words, whole: the caller redacts before it cuts (a key cut in half stays a key)."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            parts = [str(error.get(k)) for k in ("message", "code") if error.get(k)]
            return " ".join(parts) or json.dumps(error)
        return str(error)
    if body is not None:
        return str(body)[:4000]
    try:
        return exc.response.text[:4000]
    except Exception:
        return exc.message[:4000]


def _reasoning(delta: Any) -> str:
    if delta is None:
        return ""
    for name in ("reasoning_content", "reasoning"):
        value = getattr(delta, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


def _first_token_timeout(clocks: Clocks) -> ProviderError:
    return ProviderError("FirstTokenTimeout", f"no token within {clocks.first_token:g} s", timed_out=True)


async def _close(stream: Any) -> None:
    # Shielded: a message cut by its deadline must still hand its connection back.
    with contextlib.suppress(Exception):
        await asyncio.shield(stream.close())


def _tokens(usage: Any, name: str) -> int | None:
    value = getattr(usage, name, None) if usage is not None else None
    return int(value) if isinstance(value, int) else None


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
    if math.isnan(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
