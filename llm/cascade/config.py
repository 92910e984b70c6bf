"""The LLM cascade's configuration: environment variables over an optional YAML file.

Each setting: environment variable, YAML key (in the file named by SERDABOT_CONFIG), default.

LLM_MODE                  bot.llm.enabled       auto
    auto: detect the local LLM at boot and skip it while it is down; enabled: always try it
    (breakers still apply); disabled: never call any model. YAML takes auto/true/false.
LLM_ENDPOINT              bot.llm.endpoint      http://localhost:1234/v1
    OpenAI-compatible local server (LM Studio, llama.cpp).
LLM_MODEL                 bot.llm.model         (the first model the server lists)
LLM_API_KEY               bot.llm.api_key       lm-studio
    Bearer token sent to the local server (most ignore it).
LLM_TIMEOUT               bot.llm.timeout       10
    Longest one streamed answer may take from one tier, first byte to last, seconds.
LLM_CONNECT_TIMEOUT       bot.llm.connect_timeout  2
    Connect timeout, seconds.
LLM_FIRST_TOKEN_TIMEOUT   bot.llm.first_token_timeout  5
    Longest wait for the first streamed token of an answer; then the tier has failed.
LLM_STALL_TIMEOUT         bot.llm.stall_timeout  3
    Longest gap between two streamed chunks; then the tier has failed.
LLM_WARMUP_TIMEOUT        bot.llm.warmup_timeout  120
    How long the background warm-up completion may wait for a model being loaded.
LLM_DEADLINE              bot.llm.deadline      15
    Longest wait for one chat message across all tiers, seconds. When it passes the
    fallback goes out (ask_timeout) and a late answer is dropped.
LLM_LOCAL_SHARE           bot.llm.local_share   0.5
    Share of LLM_DEADLINE the local tier may use while the OpenAI tier can still
    answer: with the defaults the local tier gets 7.5 s and OpenAI at least 7.5 s.
LLM_MAX_TOKENS            bot.llm.max_tokens    200
    Longest answer asked of a model, in tokens.
LLM_PROBE_INTERVAL        bot.llm.probe_interval  30
    Seconds between background health probes of each tier.
LLM_PROBE                 bot.llm.probe         models
    models: GET /models (cheap); completion: a 1-token chat completion (LM Studio lists
    models it has not loaded, so only this proves the tier can answer).
LLM_BREAKER_FAILURES      bot.llm.breaker_failures  3
    Consecutive failures that open a tier's breaker. A refused connection, an unknown
    model or a refused key open it at once.
LLM_BREAKER_COOLDOWN      bot.llm.breaker_cooldown  60
    Seconds before an open breaker lets one trial message through (a successful
    background probe closes it sooner).
LLM_RETRY_AFTER_DEFAULT   bot.llm.retry_after_default  30
    Seconds a tier cools down after a 429 that carries no usable Retry-After.
LLM_MAX_INFLIGHT_LOCAL    bot.llm.max_inflight_local  2
    Calls in flight at once to the local tier (llama.cpp, LM Studio answer one at a time).
LLM_MAX_INFLIGHT_OPENAI   bot.llm.max_inflight_openai  8
OPENAI_API_KEY            openai.api_key        (none)
    Enables the OpenAI tier. Absent, empty or a placeholder (sk-..., your-key, changeme,
    xxx) leaves it out of the cascade.
OPENAI_MODEL              openai.model          gpt-4o-mini
OPENAI_BASE_URL           openai.base_url       https://api.openai.com/v1
    Any OpenAI-compatible server can stand in.
OPENAI_DAILY_REQUESTS     openai.daily_requests  (no limit)
OPENAI_DAILY_TOKENS       openai.daily_tokens    (no limit)
    The paid tier's daily budget (local days); the admin can override both.
FALLBACK_MODE             bot.llm.fallback_mode  fun
    fun, silent or minimal: which fallback phrases chat gets.

Boot detection waits at most min(2 s, LLM_TIMEOUT). With the defaults one message waits
at most LLM_DEADLINE = 15 s: the local tier may take its share (7.5 s) when OpenAI is
there to answer, and must show a first token within 5 s; OpenAI gets what is left.
Bad values stop start-up with one line naming the setting (ConfigError).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from serdabot.env import SettingError

T = TypeVar("T")

MODES = ("auto", "enabled", "disabled")
FALLBACK_MODES = ("fun", "silent", "minimal")
PROBE_KINDS = ("models", "completion")
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"

# Keys people paste from examples and docs instead of a real one.
_PLACEHOLDERS = {"", "none", "null", "todo", "changeme", "change-me", "change_me", "replaceme", "replace-me"}
_PLACEHOLDER_PATTERNS = (
    re.compile(r"^(sk-)?[x.*\-_]*$"),  # "xxx", "sk-...", "sk-xxxx", "***"
    re.compile(r"^<.*>$"),  # "<OPENAI_API_KEY>"
)
# Only looked for in short keys: real keys are long random strings that could contain them by chance.
_PLACEHOLDER_WORDS = re.compile(r"your|placeholder|changeme|example|insert|\.\.\.")


class ConfigError(SettingError):
    """A setting of the llm app has a value the bot cannot use; the message names it."""


def is_placeholder_key(key: str) -> bool:
    value = key.strip().lower()
    if value in _PLACEHOLDERS or any(p.search(value) for p in _PLACEHOLDER_PATTERNS):
        return True
    return len(value) < 40 and _PLACEHOLDER_WORDS.search(value) is not None


@dataclass(frozen=True)
class LLMConfig:
    mode: str = "auto"
    endpoint: str = "http://localhost:1234/v1"
    model: str = ""
    api_key: str = field(default="lm-studio", repr=False)
    timeout: float = 10.0
    connect_timeout: float = 2.0
    first_token_timeout: float = 5.0
    stall_timeout: float = 3.0
    warmup_timeout: float = 120.0
    deadline: float = 15.0
    local_share: float = 0.5
    max_tokens: int = 200
    probe_interval: float = 30.0
    probe_kind: str = "models"
    breaker_failures: int = 3
    breaker_cooldown: float = 60.0
    retry_after_default: float = 30.0
    max_inflight_local: int = 2
    max_inflight_openai: int = 8
    openai_api_key: str = field(default="", repr=False)
    openai_model: str = "gpt-4o-mini"
    openai_base_url: str = OPENAI_DEFAULT_BASE_URL
    openai_daily_requests: int | None = None
    openai_daily_tokens: int | None = None
    fallback_mode: str = "fun"

    def __post_init__(self) -> None:
        # Tests and callers build configs directly: refuse nonsense here too, not only in load_config.
        _choice("LLM_MODE", self.mode, MODES)
        _choice("FALLBACK_MODE", self.fallback_mode, FALLBACK_MODES)
        _choice("LLM_PROBE", self.probe_kind, PROBE_KINDS)
        _url("LLM_ENDPOINT", self.endpoint)
        _url("OPENAI_BASE_URL", self.openai_base_url)
        for name, value in (
            ("LLM_TIMEOUT", self.timeout),
            ("LLM_CONNECT_TIMEOUT", self.connect_timeout),
            ("LLM_DEADLINE", self.deadline),
            ("LLM_PROBE_INTERVAL", self.probe_interval),
            ("LLM_FIRST_TOKEN_TIMEOUT", self.first_token_timeout),
            ("LLM_STALL_TIMEOUT", self.stall_timeout),
            ("LLM_WARMUP_TIMEOUT", self.warmup_timeout),
        ):
            if not value > 0 or math.isinf(value):
                raise ConfigError(f"{name}: must be a positive number of seconds, got {value!r}")
        for name, count in (
            ("LLM_BREAKER_FAILURES", self.breaker_failures),
            ("LLM_MAX_INFLIGHT_LOCAL", self.max_inflight_local),
            ("LLM_MAX_INFLIGHT_OPENAI", self.max_inflight_openai),
            ("LLM_MAX_TOKENS", self.max_tokens),
        ):
            if count < 1:
                raise ConfigError(f"{name}: must be at least 1, got {count!r}")
        if not 0 < self.local_share <= 1:
            raise ConfigError(f"LLM_LOCAL_SHARE: must be above 0 and at most 1, got {self.local_share!r}")
        for name, limit in (
            ("OPENAI_DAILY_REQUESTS", self.openai_daily_requests),
            ("OPENAI_DAILY_TOKENS", self.openai_daily_tokens),
        ):
            if limit is not None and limit < 1:
                raise ConfigError(f"{name}: must be at least 1 (leave it unset for no limit), got {limit!r}")

    @property
    def openai_enabled(self) -> bool:
        return not is_placeholder_key(self.openai_api_key)

    @property
    def detect_timeout(self) -> float:
        return min(2.0, self.timeout)


# (field, environment variable, YAML path, parser)
_Parser = Callable[[str, Any], Any]


def _text(name: str, raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ConfigError(f"{name}: expected text, got {raw!r}")
    return str(raw).strip()


def _seconds(name: str, raw: Any) -> float:
    try:
        value = float(raw) if not isinstance(raw, bool) else math.nan
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
    if not value > 0 or math.isinf(value):
        raise ConfigError(f"{name}: must be a positive number of seconds, got {raw!r}")
    return value


def _count(name: str, raw: Any) -> int:
    if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name}: must be at least 1, got {raw!r}")
    return value


def _share(name: str, raw: Any) -> float:
    try:
        value = float(raw) if not isinstance(raw, bool) else math.nan
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
    if not 0 < value <= 1:
        raise ConfigError(f"{name}: must be above 0 and at most 1, got {raw!r}")
    return value


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def _chooser(choices: tuple[str, ...]) -> _Parser:
    return lambda name, raw: _choice(name, _text(name, raw).lower(), choices)


def _mode(name: str, raw: Any) -> str:
    # The spec's YAML says `enabled: auto|true|false`; YAML reads true/false as booleans.
    aliases = {True: "enabled", False: "disabled", "true": "enabled", "false": "disabled"}
    if isinstance(raw, bool):
        return aliases[raw]
    text = _text(name, raw).lower()
    if name != "LLM_MODE":
        text = str(aliases.get(text, text))
    return _choice(name, text, MODES)


def _url(name: str, value: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ConfigError(f"{name}: expected an http:// or https:// URL, got {value!r}")
    return value


def _endpoint(name: str, raw: Any) -> str:
    return _url(name, _text(name, raw).rstrip("/"))


_SETTINGS: tuple[tuple[str, str, str, _Parser], ...] = (
    ("mode", "LLM_MODE", "bot.llm.enabled", _mode),
    ("endpoint", "LLM_ENDPOINT", "bot.llm.endpoint", _endpoint),
    ("model", "LLM_MODEL", "bot.llm.model", _text),
    ("api_key", "LLM_API_KEY", "bot.llm.api_key", _text),
    ("timeout", "LLM_TIMEOUT", "bot.llm.timeout", _seconds),
    ("connect_timeout", "LLM_CONNECT_TIMEOUT", "bot.llm.connect_timeout", _seconds),
    ("first_token_timeout", "LLM_FIRST_TOKEN_TIMEOUT", "bot.llm.first_token_timeout", _seconds),
    ("stall_timeout", "LLM_STALL_TIMEOUT", "bot.llm.stall_timeout", _seconds),
    ("warmup_timeout", "LLM_WARMUP_TIMEOUT", "bot.llm.warmup_timeout", _seconds),
    ("deadline", "LLM_DEADLINE", "bot.llm.deadline", _seconds),
    ("local_share", "LLM_LOCAL_SHARE", "bot.llm.local_share", _share),
    ("max_tokens", "LLM_MAX_TOKENS", "bot.llm.max_tokens", _count),
    ("probe_interval", "LLM_PROBE_INTERVAL", "bot.llm.probe_interval", _seconds),
    ("probe_kind", "LLM_PROBE", "bot.llm.probe", _chooser(PROBE_KINDS)),
    ("breaker_failures", "LLM_BREAKER_FAILURES", "bot.llm.breaker_failures", _count),
    ("breaker_cooldown", "LLM_BREAKER_COOLDOWN", "bot.llm.breaker_cooldown", _seconds),
    ("retry_after_default", "LLM_RETRY_AFTER_DEFAULT", "bot.llm.retry_after_default", _seconds),
    ("max_inflight_local", "LLM_MAX_INFLIGHT_LOCAL", "bot.llm.max_inflight_local", _count),
    ("max_inflight_openai", "LLM_MAX_INFLIGHT_OPENAI", "bot.llm.max_inflight_openai", _count),
    ("openai_api_key", "OPENAI_API_KEY", "openai.api_key", _text),
    ("openai_model", "OPENAI_MODEL", "openai.model", _text),
    ("openai_base_url", "OPENAI_BASE_URL", "openai.base_url", _endpoint),
    ("openai_daily_requests", "OPENAI_DAILY_REQUESTS", "openai.daily_requests", _count),
    ("openai_daily_tokens", "OPENAI_DAILY_TOKENS", "openai.daily_tokens", _count),
    ("fallback_mode", "FALLBACK_MODE", "bot.llm.fallback_mode", _chooser(FALLBACK_MODES)),
)


def _read_yaml(path: str) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"SERDABOT_CONFIG: cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"SERDABOT_CONFIG: {path} is not valid YAML{line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"SERDABOT_CONFIG: {path} must hold a mapping at the top level")
    return data


def _lookup(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def load_config(environ: Mapping[str, str] | None = None) -> LLMConfig:
    """Read the settings: environment variables override the YAML file named by SERDABOT_CONFIG."""
    env = os.environ if environ is None else environ
    path = env.get("SERDABOT_CONFIG", "").strip()
    data = _read_yaml(path) if path else {}
    return config_from(data, env, source=path)


def config_from(data: Mapping[str, Any], environ: Mapping[str, str], *, source: str) -> LLMConfig:
    """The settings from a mapping shaped like the YAML file; the environment still wins.

    `source` names the mapping in error messages (the file's path, "the config given").
    """
    values: dict[str, Any] = {}
    for attr, var, key, parse in _SETTINGS:
        raw_env = environ.get(var)
        if raw_env is not None and raw_env.strip() != "":
            values[attr] = parse(var, raw_env.strip())
            continue
        raw = _lookup(data, key)
        if raw is not None and raw != "":
            values[attr] = parse(f"{key} in {source}", raw)
    return LLMConfig(**values)
