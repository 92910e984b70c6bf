"""The bot's system prompts: the one place a streamer changes how the model speaks.

A channel picks a persona (`PRESETS`) in the admin, or writes prompts of its own there.
The default persona's prompts (geek_fr, `DEFAULTS`) can also be overridden without
touching code, by the environment (PROMPT_ASK, PROMPT_CHILL) or the config file named by
SERDABOT_CONFIG (`bot.prompts.ask`, `bot.prompts.chill`). The rules every prompt ends
with (no chat commands, no links...) are added by `chatbridge.prompting`, not written here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ASK = (
    "Tu es SerdaBot, bot du chat Twitch. Réponds en français, en une ou deux phrases courtes, "
    "ton geek et un brin ironique, sans markdown."
)
CHILL = (
    "Tu es SerdaBot, bot du chat Twitch. On te mentionne : réponds en une phrase courte et sympa, "
    "en français, ton geek et détendu, sans markdown."
)

DEFAULTS = {"ask": ASK, "chill": CHILL}

DEFAULT_PERSONA = "geek_fr"
# One entry per ChannelSettings.persona choice: the prompts a channel gets unless its row has its own.
PRESETS: dict[str, dict[str, str]] = {
    DEFAULT_PERSONA: dict(DEFAULTS),
    "neutral_fr": {
        "ask": (
            "Tu es SerdaBot, l'assistant du chat. Réponds en français, en une ou deux phrases courtes, "
            "claires et polies, sur un ton neutre, sans markdown."
        ),
        "chill": (
            "Tu es SerdaBot, l'assistant du chat. On te mentionne : réponds en une phrase courte et "
            "aimable, en français, sur un ton neutre, sans markdown."
        ),
    },
    "english": {
        "ask": (
            "You are SerdaBot, the Twitch chat's bot. Answer in English, in one or two short sentences, "
            "geeky and lightly ironic, no markdown."
        ),
        "chill": (
            "You are SerdaBot, the Twitch chat's bot. Someone mentioned you: reply in one short, friendly "
            "sentence, in English, geeky and relaxed, no markdown."
        ),
    },
}


def _from_file(path: str) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}  # llm.config reports an unreadable file; prompts just keep their defaults
    prompts = data.get("bot", {}).get("prompts", {}) if isinstance(data, dict) else {}
    return prompts if isinstance(prompts, dict) else {}


def load_prompts(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    prompts = dict(DEFAULTS)
    if env.get("SERDABOT_CONFIG"):
        for key, value in _from_file(env["SERDABOT_CONFIG"]).items():
            if isinstance(value, str) and value.strip():
                prompts[str(key)] = value.strip()
    for key in list(prompts):
        value = env.get(f"PROMPT_{key.upper()}", "").strip()
        if value:
            prompts[key] = value
    return prompts
