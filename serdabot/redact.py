"""One redaction for every error detail: configured secrets and anything shaped like a key go.

Some proxies echo the API key in their error bodies; those bodies reach logs, the tier
history, `llmstatus`, the dashboard and the CSV export. Everything that stores or shows
an error detail passes it through `redact()` first, and the console log handler runs
`RedactingFilter` on every line it prints.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from urllib.parse import quote

from django.conf import settings

from llm.cascade.config import LLMConfig, is_placeholder_key, load_config
from serdabot.env import SettingError

MASK = "[redacted]"

# Secrets this process knows, by the settings that hold them (read on every call: a test
# or a supervisor may change them at run time).
SECRET_SETTINGS = (
    "OPENAI_API_KEY",
    "LLM_API_KEY",
    "SECRET_KEY",
    "TWITCH_CLIENT_SECRET",
    "TWITCH_BOT_TOKEN",
    "TWITCH_REFRESH_TOKEN",
    "DISCORD_TOKEN",
)
# Shorter values are not masked by value: they would blank out ordinary words. The
# patterns below still catch key-shaped text.
MIN_SECRET_LENGTH = 8
# Values that sit in a secret setting but are public defaults ("lm-studio" is in model
# names and in the README): masking them would only mangle text.
NOT_SECRETS = frozenset({LLMConfig.api_key})

# Names whose value is a secret, in `name=value`, `name: value` and `"name": "value"`.
_SECRET_NAMES = (
    r"x-api-key|api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|id[_-]?token|auth[_-]?token"
    r"|bot[_-]?token|client[_-]?secret|secret[_-]?key|token|secret|password|passwd"
)
# A value stops at what ends a word in a URL, a header or JSON. "[" is excluded so that
# redacting twice gives the same text ("token=[redacted]" is left alone).
_VALUE = r"[^\s\"'&,;<>()\[\]{}]+"

_ASSIGNMENT = re.compile(
    rf"(?i)(?<![\w-])(?P<name>{_SECRET_NAMES})(?![\w-])"
    rf"(?P<sep>[\"']?\s*(?P<op>[=:])\s*[\"']?)(?P<value>{_VALUE})"
)
_HEADER = re.compile(
    rf"(?i)\b(?P<name>authorization|proxy-authorization)(?P<sep>[\"']?\s*[=:]\s*[\"']?)"
    rf"(?:(?P<scheme>bearer|basic|bot|token)\s+)?(?P<value>{_VALUE})"
)
_BEARER = re.compile(r"(?i)\b(?P<scheme>bearer)\s+(?P<value>[A-Za-z0-9._~+/-]+=*)")
# http://user:password@host: the password goes, the user stays (it says which account).
# redis://:password@host (no user) is the usual Redis form: the user may be empty.
_USERINFO = re.compile(r"(?i)\b(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^/\s:@]*):(?P<value>[^/\s@]+)@")
# Query parameters some APIs put their key in (Google's ?key=, signed URLs' &sig=), and an
# OAuth callback's one-time code and state (/twitch/callback/?code=...&state=...).
_QUERY_KEY = re.compile(r"(?i)(?P<name>[?&](?:key|sig|signature|code|state|device_code)=)(?P<value>[^&#\s]+)")
# Keys recognisable by their shape alone, whatever surrounds them.
_SHAPED = re.compile(
    r"\bsk-[A-Za-z0-9_-]{8,}"  # OpenAI (sk-proj-..., sk-svcacct-...) and many OpenAI-compatible proxies
    r"|\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}"  # GitHub
    r"|\bglpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|\bhf_[A-Za-z0-9]{20,}"  # Hugging Face
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key id
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"  # a JWT
    r"|\b[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"  # a Discord bot token
)

_SURROGATE = re.compile(r"[\ud800-\udfff]")

_registered: tuple[str, ...] = ()  # replaced whole, never mutated: readers need no lock
_register_lock = threading.Lock()
# (the values it was built from, the secrets): one tuple, so threads never see half of it.
_cache: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())


def is_secret_value(value: str) -> bool:
    return len(value) >= MIN_SECRET_LENGTH and value not in NOT_SECRETS and not is_placeholder_key(value)


def register_secret(value: str) -> None:
    """A secret known only at run time (a refreshed token, a key from the config file)."""
    global _registered
    value = value.strip()
    if not is_secret_value(value):
        return
    with _register_lock:
        if value not in _registered:
            _registered = (*_registered, value)


def register_config_secrets(config: LLMConfig | None = None) -> None:
    """The LLM keys wherever they were set, the YAML file named by SERDABOT_CONFIG included."""
    if config is None:
        try:
            config = load_config()
        except (SettingError, OSError):
            return  # start-up stops on the bad setting and names it; the patterns still apply
    register_secret(config.api_key)
    register_secret(config.openai_api_key)


def known_secrets() -> tuple[str, ...]:
    """Every secret value to mask, longest first (a secret containing another goes whole)."""
    global _cache
    sources = (*(os.environ.get(name, "") for name in SECRET_SETTINGS), *_registered)
    built_from, secrets = _cache
    if sources == built_from:
        return secrets
    values: set[str] = set()
    for raw in sources:
        value = raw.strip()
        for candidate in (value, value.removeprefix("oauth:")):  # TWITCH_BOT_TOKEN may carry it
            if is_secret_value(candidate):
                # Also as it appears in a URL, where a library may have put it.
                values.update({candidate, quote(candidate, safe="")})
    secrets = tuple(sorted(values, key=len, reverse=True))
    _cache = (sources, secrets)
    return secrets


def looks_secret(value: str) -> bool:
    # After "Bearer" or "password:" a random-looking value is masked, a word is not:
    # "the bearer of bad news", "Password: choose a long one".
    return len(value) >= MIN_SECRET_LENGTH and (any(ch.isdigit() for ch in value) or len(value) >= 20)


def redact(text: str) -> str:
    """The text without secrets, fit to log, store and print."""
    if not text:
        return text
    # A lone surrogate from a decoded error body cannot be written as UTF-8 (the log, the
    # CSV, `llmstatus --json`): shown as "�" instead of failing the whole line.
    text = _SURROGATE.sub("\ufffd", text)
    for secret in known_secrets():
        text = _without_cut_secret(text.replace(secret, MASK), secret)
    text = _SHAPED.sub(MASK, text)
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _QUERY_KEY.sub(lambda m: f"{m['name']}{MASK}", text)
    text = _HEADER.sub(_mask_header, text)
    text = _BEARER.sub(_mask_bearer, text)
    return _ASSIGNMENT.sub(_mask_assignment, text)


def _without_cut_secret(text: str, secret: str) -> str:
    # An error body cut to length before it got here may end with the first part of a key.
    start = max(len(text) - len(secret) + 1, 0)
    while (found := text.find(secret[:MIN_SECRET_LENGTH], start)) >= 0:
        if secret.startswith(text[found:]):
            return text[:found] + MASK
        start = found + 1
    return text


def _mask_header(match: re.Match[str]) -> str:
    scheme = match["scheme"]
    if scheme is None and not looks_secret(match["value"]):
        return match[0]
    return f"{match['name']}{match['sep']}{f'{scheme} ' if scheme else ''}{MASK}"


def _mask_bearer(match: re.Match[str]) -> str:
    return f"{match['scheme']} {MASK}" if looks_secret(match["value"]) else match[0]


def _mask_assignment(match: re.Match[str]) -> str:
    # "api_key=..." is an explicit assignment (a URL, a config line): always masked.
    if match["op"] == ":" and not looks_secret(match["value"]):
        return match[0]
    return f"{match['name']}{match['sep']}{MASK}"


_traceback_formatter = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Redacts each record a handler prints: its message, its traceback, its stack."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        # LOGGING builds this filter once at start-up in every process: the moment to learn
        # the keys of the YAML config file (the environment's are read on every call) and
        # the generated SECRET_KEY of a local run.
        register_config_secrets()
        if settings.configured:
            register_secret(settings.SECRET_KEY)
            register_secret(getattr(settings, "EMAIL_HOST_PASSWORD", ""))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True  # bad arguments: the handler reports them as it would without us
        # The message is formatted here, once: a secret passed as an argument goes too.
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            # The formatter reuses exc_text when it is set: format the traceback here to redact it.
            record.exc_text = _traceback_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
