"""Provider details the fault matrix does not reach: Retry-After forms, what goes on the wire."""

from __future__ import annotations

import email.utils
import time

import pytest

from llm.providers import MAX_RETRY_AFTER, Provider, parse_retry_after
from tests.fakes.openai_server import FakeOpenAI


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


async def test_it_sends_the_bearer_token_and_the_right_token_limit_name() -> None:
    with FakeOpenAI() as server:
        provider = Provider(
            "openai", server.url, api_key="sk-secret", model="fake-model", token_param="max_completion_tokens"
        )
        completion = await provider.complete(system_prompt="", prompt="ping", max_tokens=1)
        await provider.aclose()

    [request] = server.requests
    assert request.authorization == "Bearer sk-secret"
    assert request.body == {
        "model": "fake-model",
        "messages": [{"role": "user", "content": "ping"}],
        "max_completion_tokens": 1,
        "stream": False,
    }
    assert completion.model == "fake-model"
    assert "sk-secret" not in repr(provider)
