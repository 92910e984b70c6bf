"""Provider details the fault matrix does not reach: what goes on the wire, the SDK error mapping."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx2
import openai
import pytest

from llm.cascade.errors import ProviderError
from llm.cascade.providers import MAX_ANSWER_CHARS, MAX_RETRY_AFTER, Provider, map_error, parse_retry_after
from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("12", 12.0),
        ("0.5", 0.5),
        (None, None),
        ("", None),
        ("soon", None),
        ("-3", None),
        ("99999", MAX_RETRY_AFTER),
    ],
)
def test_retry_after_in_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_as_an_http_date() -> None:
    header = email.utils.formatdate(time.time() + 30, usegmt=True)

    seconds = parse_retry_after(header)

    assert seconds is not None and 25 < seconds <= 30


async def test_it_streams_with_the_bearer_token_and_the_right_token_limit_name() -> None:
    with FakeOpenAI() as server:
        provider = Provider(
            "openai",
            server.url,
            api_key="sk-secret",
            model="fake-model",
            token_param="max_completion_tokens",
            include_usage=True,
        )
        completion = await provider.complete(system_prompt="", prompt="ping", max_tokens=1)
        await provider.aclose()

    [request] = server.requests
    assert request.authorization == "Bearer sk-secret"
    assert request.body == {
        "model": "fake-model",
        "messages": [{"role": "user", "content": "ping"}],
        "max_completion_tokens": 1,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert completion.model == "fake-model"
    assert completion.text == DEFAULT_ANSWER
    assert server.last_usage is not None
    assert (completion.prompt_tokens, completion.completion_tokens) == (
        server.last_usage["prompt_tokens"],
        server.last_usage["completion_tokens"],
    )
    assert "sk-secret" not in repr(provider)


async def test_the_local_tier_does_not_ask_for_usage() -> None:
    # Not every OpenAI-compatible server knows stream_options.
    with FakeOpenAI() as server:
        provider = Provider("local", server.url, api_key="lm-studio", model="fake-model")
        completion = await provider.complete(system_prompt="Court.", prompt="ping", max_tokens=50)
        await provider.aclose()

    [request] = server.requests
    assert "stream_options" not in request.body
    assert request.body["max_tokens"] == 50
    assert (completion.prompt_tokens, completion.completion_tokens) == (None, None)


async def test_history_goes_between_the_system_prompt_and_the_question_in_order() -> None:
    history = [("c'est quoi Python ?", "Un serpent qui code."), ("et Rust ?", "Un crabe qui compile.")]
    with FakeOpenAI() as server:
        provider = Provider("local", server.url, api_key="k", model="fake-model")
        await provider.complete(system_prompt="Court.", prompt="et Go ?", max_tokens=50, history=history)
        await provider.aclose()

    [request] = server.requests
    assert request.body["messages"] == [
        {"role": "system", "content": "Court."},
        {"role": "user", "content": "c'est quoi Python ?"},
        {"role": "assistant", "content": "Un serpent qui code."},
        {"role": "user", "content": "et Rust ?"},
        {"role": "assistant", "content": "Un crabe qui compile."},
        {"role": "user", "content": "et Go ?"},
    ]


async def test_history_without_a_system_prompt_starts_with_the_first_question() -> None:
    with FakeOpenAI() as server:
        provider = Provider("local", server.url, api_key="k", model="fake-model")
        await provider.complete(system_prompt="", prompt="et Go ?", max_tokens=50, history=[("q", "a")])
        await provider.aclose()

    [request] = server.requests
    assert [m["role"] for m in request.body["messages"]] == ["user", "assistant", "user"]


async def test_the_answer_read_is_bounded() -> None:
    answer = " ".join(["mot"] * MAX_ANSWER_CHARS)  # four times the bound, streamed in eight chunks
    with FakeOpenAI(answer=answer) as server:
        provider = Provider("local", server.url, api_key="k", model="fake-model")
        completion = await provider.complete(system_prompt="", prompt="ping", max_tokens=50)
        await provider.aclose()

    assert MAX_ANSWER_CHARS < len(completion.text) < len(answer) / 2
    assert completion.finish_reason == "length"


async def test_a_model_still_to_be_found_is_looked_up_within_the_first_token_clock() -> None:
    # No LLM_MODEL: the first completion asks /models first. A server that hangs there must not
    # get longer than the first token's time (the client's own read timeout is the stall clock).
    with FakeOpenAI() as server:
        server.set_fault("hang")
        provider = Provider("local", server.url, api_key="k", first_token_timeout=0.3, stall_timeout=3.0)
        began = time.monotonic()
        with pytest.raises(ProviderError) as caught:
            await provider.complete(system_prompt="", prompt="ping", max_tokens=1)
        took = time.monotonic() - began
        await provider.aclose()

    assert caught.value.timed_out
    assert took < 1.5  # the first-token clock (0.3 s) told, not the stall clock (3 s)


@pytest.mark.parametrize(
    ("status", "body", "kind", "at_once"),
    [
        (401, {"error": {"message": "bad key"}}, "HTTP401", True),
        (403, {"error": {"message": "forbidden"}}, "HTTP403", True),
        (
            404,
            {"error": {"message": "The model `x` does not exist", "code": "model_not_found"}},
            "ModelNotFound",
            True,
        ),
        (400, {"error": {"message": "model not loaded"}}, "ModelNotFound", True),
        (404, {"error": {"message": "no route"}}, "HTTP404", False),
        (502, {"error": {"message": "bad gateway"}}, "HTTP502", False),
    ],
)
def test_status_errors_keep_their_class(status: int, body: dict[str, Any], kind: str, at_once: bool) -> None:
    error = map_error(_status(status, body), "http://x/v1", "/chat/completions")

    assert (error.kind, error.opens_at_once) == (kind, at_once)


def test_a_429_keeps_its_retry_after() -> None:
    error = map_error(_status(429, {"error": {"message": "slow down"}}, {"retry-after": "7"}), "u", "/p")

    assert (error.kind, error.retry_after, error.rate_limited) == ("RateLimited", 7.0, True)


def test_an_error_message_echoing_a_key_is_redacted() -> None:
    key = "sk-proj-" + "A1b2C3d4" * 5
    error = map_error(_status(401, {"error": {"message": f"Incorrect API key provided: {key}"}}), "u", "/p")

    assert key not in error.detail
    assert "Incorrect API key provided" in error.detail


def _status(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(status, json=body, headers=headers or {}, request=request)
    client = openai.OpenAI(api_key="k", base_url="http://127.0.0.1/v1")
    error = client._make_status_error_from_response(response)
    client.close()
    return error
