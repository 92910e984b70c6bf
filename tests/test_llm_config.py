"""Configuration: defaults, environment over YAML, bad values refused by name, placeholder keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm.cascade.config import ConfigError, LLMConfig, is_placeholder_key, load_config
from serdabot.env import SettingError
from tests.subprocesses import bot_env, manage

REAL_LOOKING_KEY = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z" * 2


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_it_runs_on_defaults_with_nothing_configured() -> None:
    config = load_config({})

    assert config == LLMConfig()
    assert (config.mode, config.endpoint, config.model, config.timeout) == (
        "auto",
        "http://localhost:1234/v1",
        "",
        10.0,
    )
    assert (config.connect_timeout, config.deadline, config.probe_interval, config.probe_kind) == (
        2.0,
        15.0,
        30.0,
        "models",
    )
    assert (config.openai_model, config.openai_base_url, config.fallback_mode) == (
        "gpt-4o-mini",
        "https://api.openai.com/v1",
        "fun",
    )
    assert (config.max_inflight_local, config.breaker_failures) == (2, 3)
    assert not config.openai_enabled
    assert config.detect_timeout == 2.0


def test_it_reads_every_setting_from_the_environment() -> None:
    config = load_config(
        {
            "LLM_MODE": "enabled",
            "LLM_ENDPOINT": "http://10.0.0.5:8080/v1/",
            "LLM_MODEL": "qwen2.5-7b",
            "LLM_TIMEOUT": "4.5",
            "LLM_CONNECT_TIMEOUT": "1",
            "LLM_DEADLINE": "8",
            "LLM_MAX_TOKENS": "120",
            "LLM_PROBE_INTERVAL": "10",
            "LLM_PROBE": "completion",
            "LLM_BREAKER_FAILURES": "5",
            "LLM_BREAKER_COOLDOWN": "30",
            "LLM_RETRY_AFTER_DEFAULT": "12",
            "LLM_MAX_INFLIGHT_LOCAL": "1",
            "LLM_MAX_INFLIGHT_OPENAI": "4",
            "OPENAI_API_KEY": REAL_LOOKING_KEY,
            "OPENAI_MODEL": "gpt-4.1-mini",
            "OPENAI_BASE_URL": "https://openrouter.ai/api/v1",
            "FALLBACK_MODE": "minimal",
        }
    )

    assert config == LLMConfig(
        mode="enabled",
        endpoint="http://10.0.0.5:8080/v1",
        model="qwen2.5-7b",
        timeout=4.5,
        connect_timeout=1.0,
        deadline=8.0,
        max_tokens=120,
        probe_interval=10.0,
        probe_kind="completion",
        breaker_failures=5,
        breaker_cooldown=30.0,
        retry_after_default=12.0,
        max_inflight_local=1,
        max_inflight_openai=4,
        openai_api_key=REAL_LOOKING_KEY,
        openai_model="gpt-4.1-mini",
        openai_base_url="https://openrouter.ai/api/v1",
        fallback_mode="minimal",
    )
    assert config.openai_enabled


def test_it_reads_the_spec_yaml_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
bot:
  llm:
    enabled: false
    endpoint: "http://127.0.0.1:1234/v1"
    fallback_mode: silent
    timeout: 3
openai:
  api_key: "{REAL_LOOKING_KEY}"
  model: gpt-4o
""",
    )

    config = load_config({"SERDABOT_CONFIG": path})

    assert (config.mode, config.endpoint, config.fallback_mode, config.timeout) == (
        "disabled",
        "http://127.0.0.1:1234/v1",
        "silent",
        3.0,
    )
    assert (config.openai_api_key, config.openai_model, config.openai_enabled) == (
        REAL_LOOKING_KEY,
        "gpt-4o",
        True,
    )


@pytest.mark.parametrize(("value", "mode"), [("true", "enabled"), ("false", "disabled"), ("auto", "auto")])
def test_yaml_enabled_takes_auto_true_false(tmp_path: Path, value: str, mode: str) -> None:
    path = write(tmp_path, f"bot:\n  llm:\n    enabled: {value}\n")

    assert load_config({"SERDABOT_CONFIG": path}).mode == mode


def test_the_environment_overrides_the_yaml_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, "bot:\n  llm:\n    enabled: false\n    endpoint: http://yaml:1/v1\nopenai:\n  model: a\n"
    )

    config = load_config({"SERDABOT_CONFIG": path, "LLM_MODE": "auto", "OPENAI_MODEL": "b"})

    assert (config.mode, config.endpoint, config.openai_model) == ("auto", "http://yaml:1/v1", "b")


def test_an_empty_variable_does_not_override_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "bot:\n  llm:\n    fallback_mode: minimal\n")

    assert load_config({"SERDABOT_CONFIG": path, "FALLBACK_MODE": ""}).fallback_mode == "minimal"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LLM_MODE": "sometimes"}, "LLM_MODE: expected one of auto, enabled, disabled, got 'sometimes'"),
        ({"LLM_TIMEOUT": "abc"}, "LLM_TIMEOUT: expected a number, got 'abc'"),
        ({"LLM_TIMEOUT": "-1"}, "LLM_TIMEOUT: must be a positive number of seconds, got '-1'"),
        ({"LLM_DEADLINE": "0"}, "LLM_DEADLINE: must be a positive number of seconds, got '0'"),
        ({"LLM_CONNECT_TIMEOUT": "nan"}, "LLM_CONNECT_TIMEOUT: must be a positive number of seconds"),
        ({"LLM_PROBE_INTERVAL": "inf"}, "LLM_PROBE_INTERVAL: must be a positive number of seconds"),
        ({"LLM_PROBE": "ping"}, "LLM_PROBE: expected one of models, completion, got 'ping'"),
        ({"LLM_BREAKER_FAILURES": "2.5"}, "LLM_BREAKER_FAILURES: expected a whole number, got '2.5'"),
        ({"LLM_MAX_INFLIGHT_LOCAL": "0"}, "LLM_MAX_INFLIGHT_LOCAL: must be at least 1, got '0'"),
        ({"FALLBACK_MODE": "loud"}, "FALLBACK_MODE: expected one of fun, silent, minimal, got 'loud'"),
        ({"LLM_ENDPOINT": "localhost:1234"}, "LLM_ENDPOINT: expected an http:// or https:// URL"),
        ({"OPENAI_BASE_URL": "ftp://x"}, "OPENAI_BASE_URL: expected an http:// or https:// URL"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(env)

    assert str(error.value).startswith(message)
    assert isinstance(error.value, SettingError)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("bot:\n  llm:\n    timeout: soon\n", "bot.llm.timeout in "),
        ("bot:\n  llm:\n    enabled: maybe\n", "bot.llm.enabled in "),
        ("bot:\n  llm:\n    endpoint: [1, 2]\n", "bot.llm.endpoint in "),
        ("bot: [\n", "SERDABOT_CONFIG: "),
        ("- just\n- a list\n", "SERDABOT_CONFIG: "),
    ],
)
def test_bad_yaml_is_refused_naming_the_key(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = write(tmp_path, yaml_text)

    with pytest.raises(ConfigError, match="^" + message):
        load_config({"SERDABOT_CONFIG": path})


def test_an_unreadable_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^SERDABOT_CONFIG: cannot read .*missing\.yaml"):
        load_config({"SERDABOT_CONFIG": str(tmp_path / "missing.yaml")})


@pytest.mark.parametrize(
    "key",
    ["", "   ", "sk-...", "sk-xxx", "xxx", "your-key", "YOUR_OPENAI_API_KEY", "sk-your-key-here", "changeme",
     "<OPENAI_API_KEY>", "none", "sk-***"],
)  # fmt: skip
def test_placeholder_keys_leave_the_openai_tier_out(key: str) -> None:
    assert is_placeholder_key(key)
    assert not LLMConfig(openai_api_key=key).openai_enabled


@pytest.mark.parametrize("key", [REAL_LOOKING_KEY, "lm-studio", "sk-1234567890abcdef"])
def test_real_looking_keys_enable_the_openai_tier(key: str) -> None:
    assert LLMConfig(openai_api_key=key).openai_enabled


def test_keys_never_show_in_the_repr() -> None:
    config = LLMConfig(openai_api_key=REAL_LOOKING_KEY, api_key="local-secret")

    assert REAL_LOOKING_KEY not in repr(config)
    assert "local-secret" not in repr(config)


def test_a_bad_setting_stops_the_bot_with_one_line_naming_it(tmp_path: Path) -> None:
    result = manage(bot_env(tmp_path, LLM_TIMEOUT="abc"), "llmstatus")

    assert result.returncode == 2
    assert result.stderr.strip() == "Configuration error: LLM_TIMEOUT: expected a number, got 'abc'"
