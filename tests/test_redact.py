"""One redaction for every error detail: configured secrets and key-shaped text go, chat text stays."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm.cascade.config import load_config
from serdabot import redact as redaction
from serdabot.redact import MASK, RedactingFilter, redact, register_config_secrets, register_secret
from tests.subprocesses import bot_env, manage

# Shaped like nothing in particular: only knowing the configured value can catch it.
PROXY_KEY = "proxy-" + "7f3a9c2e" * 4


@pytest.fixture(autouse=True)
def no_registered_secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(redaction, "_registered", ())
    for name in redaction.SECRET_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.mark.parametrize(
    "setting", ["OPENAI_API_KEY", "LLM_API_KEY", "DISCORD_TOKEN", "TWITCH_CLIENT_SECRET"]
)
def test_it_masks_a_configured_secret(monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    monkeypatch.setenv(setting, PROXY_KEY)

    assert redact(f"401 from the proxy: bad key {PROXY_KEY}.") == f"401 from the proxy: bad key {MASK}."


def test_it_masks_a_twitch_token_with_or_without_its_oauth_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWITCH_BOT_TOKEN", f"oauth:{PROXY_KEY}")

    assert redact(f"token {PROXY_KEY} refused") == f"token {MASK} refused"


def test_it_masks_the_keys_of_the_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "serdabot.yaml"
    config.write_text(f"bot:\n  llm:\n    api_key: local-{PROXY_KEY}\nopenai:\n  api_key: {PROXY_KEY}\n")
    monkeypatch.setenv("SERDABOT_CONFIG", str(config))
    text = f"echo: {PROXY_KEY} and local-{PROXY_KEY}"
    assert redact(text) == text  # not in the environment: unknown until registered

    register_config_secrets()

    assert redact(text) == f"echo: {MASK} and {MASK}"


def test_a_bad_config_file_registers_nothing_and_raises_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SERDABOT_CONFIG", str(tmp_path / "missing.yaml"))
    monkeypatch.setenv("LLM_TIMEOUT", "abc")

    register_config_secrets()

    assert redaction._registered == ()


def test_public_defaults_and_short_values_are_not_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_API_KEY", "lm-studio")  # the README's default
    register_secret("short")
    register_secret(load_config({}).api_key)
    text = "model lmstudio-community/qwen on lm-studio, short answer"

    assert redact(text) == text


def test_a_key_cut_short_by_a_length_limit_is_still_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    register_secret(PROXY_KEY)
    body = f"Incorrect API key provided: {PROXY_KEY}"[:40]

    assert redact(body) == f"Incorrect API key provided: {MASK}"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        (
            "Incorrect API key provided: sk-proj-Ab12Cd34Ef56Gh78Ij90.",
            f"Incorrect API key provided: {MASK}.",
        ),
        ("Authorization: Bearer abcdefghijkl", f"Authorization: Bearer {MASK}"),
        ("authorization: Bot MTIzNDU2Nzg5MDEy.abc", f"authorization: Bot {MASK}"),
        ("sent bearer 9f8e7d6c5b4a3f2e1d0c", f"sent bearer {MASK}"),
        (
            "GET https://api.example.com/v1/models?api_key=abc&x=1",
            f"GET https://api.example.com/v1/models?api_key={MASK}&x=1",
        ),
        (
            "POST https://id.twitch.tv/oauth2/token?client_secret=s3cr3t&grant_type=refresh_token",
            f"POST https://id.twitch.tv/oauth2/token?client_secret={MASK}&grant_type=refresh_token",
        ),
        ('{"error": "denied", "api_key": "zz99zz99zz99"}', f'{{"error": "denied", "api_key": "{MASK}"}}'),
        ("password: hunter2hunter2", f"password: {MASK}"),
        (
            "proxy https://bot:hunter22@proxy.example:8080/v1",
            f"proxy https://bot:{MASK}@proxy.example:8080/v1",
        ),
        ("Redis at redis://:n0tS0public@10.0.0.5:6379/0", f"Redis at redis://:{MASK}@10.0.0.5:6379/0"),
        ("https://maps.example/geo?key=AIzaSyA1234567890&q=x", f"https://maps.example/geo?key={MASK}&q=x"),
        (
            '"GET /twitch/callback/?code=gulfwdmys5lsm6qyz4&scope=user%3Abot&state=c3ab8aa6 HTTP/1.1" 302',
            f'"GET /twitch/callback/?code={MASK}&scope=user%3Abot&state={MASK} HTTP/1.1" 302',
        ),
        ("github ghp_" + "a1B2" * 9 + " leaked", f"github {MASK} leaked"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4", f"jwt {MASK}"),
    ],
)
def test_it_masks_text_shaped_like_a_key(text: str, redacted: str) -> None:
    assert redact(text) == redacted
    assert redact(redacted) == redacted  # twice is once


@pytest.mark.parametrize(
    "text",
    [
        "Ça dépend : « Python » est simple, non ? 👩‍💻 Le token Twitch a expiré.",
        "Le secret est dans la sauce. Mot de passe : oublié.",
        "The bearer of bad news. Password: choose a long one. Authorization: refused.",
        "max_tokens=200, tokens: 12, page_token=abc, risk-free, desk-lamp, sk-learn, sk-...",
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ et https://fr.wikipedia.org/wiki/Python_(langage)",
        "https://api.openai.com/v1/chat/completions HTTP503: internal server error",
        "connection refused by 127.0.0.1:1234 (ConnectError)",
    ],
)
def test_ordinary_text_and_urls_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_a_lone_surrogate_becomes_a_replacement_character() -> None:
    text = redact("bad body \ud800 here")

    assert text == "bad body \ufffd here"
    text.encode("utf-8")


def the_console_handler() -> logging.StreamHandler[Any]:
    """The handler LOGGING installs on the root logger (caplog's own handler skips its filters)."""
    [handler] = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and any(isinstance(f, RedactingFilter) for f in h.filters)
    ]
    return handler


def printed(log: logging.Logger, *args: object, exc: BaseException | None = None) -> str:
    handler = the_console_handler()
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        if exc is None:
            log.warning(*args)
        else:
            try:
                raise exc
            except type(exc):
                log.exception(*args)
    finally:
        handler.setStream(previous)
    return stream.getvalue()


def test_the_console_log_handler_redacts_messages_and_their_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PROXY_KEY)

    line = printed(logging.getLogger("llm.cascade"), "openai failed: %s (%s)", f"echo {PROXY_KEY}", 401)

    assert PROXY_KEY not in line
    assert f"llm.cascade openai failed: echo {MASK} (401)" in line


def test_the_console_log_handler_redacts_tracebacks(monkeypatch: pytest.MonkeyPatch) -> None:
    register_secret(PROXY_KEY)

    text = printed(logging.getLogger("django.request"), "Internal Server Error", exc=ValueError(PROXY_KEY))

    assert PROXY_KEY not in text
    assert "Traceback (most recent call last)" in text and f"ValueError: {MASK}" in text


def test_a_log_line_with_bad_arguments_does_not_raise_in_the_caller() -> None:
    record = logging.LogRecord("llm", logging.WARNING, __file__, 1, "%s and %s", ("one",), None)

    assert RedactingFilter().filter(record)


def test_a_bot_process_redacts_the_config_files_key_in_its_log(tmp_path: Path) -> None:
    config = tmp_path / "serdabot.yaml"
    config.write_text(f"openai:\n  api_key: {PROXY_KEY}\n")
    code = f"import logging; logging.getLogger('llm.providers').warning('proxy said: bad key {PROXY_KEY}')"

    result = manage(bot_env(tmp_path / "local", SERDABOT_CONFIG=str(config)), "shell", "-c", code)

    assert result.returncode == 0, result.stderr
    assert PROXY_KEY not in result.stdout + result.stderr
    assert f"llm.providers proxy said: bad key {MASK}" in result.stderr
