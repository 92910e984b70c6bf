"""The personas' prompts (`chatbridge.prompts`) and the overrides of the default one."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbridge.models import Persona
from chatbridge.prompts import DEFAULT_PERSONA, DEFAULTS, PRESETS, load_prompts


def test_every_persona_the_admin_offers_has_both_prompts() -> None:
    assert set(PRESETS) == set(Persona.values)
    for persona, prompts in PRESETS.items():
        assert set(prompts) == {"ask", "chill"}, persona
        assert all(text.strip() for text in prompts.values()), persona


def test_the_default_persona_is_the_default_prompts() -> None:
    assert DEFAULT_PERSONA == Persona.GEEK_FR
    assert PRESETS[DEFAULT_PERSONA] == DEFAULTS


@pytest.mark.parametrize(("persona", "language"), [("geek_fr", "français"), ("neutral_fr", "français")])
def test_french_personas_answer_in_french(persona: str, language: str) -> None:
    assert all(language in text for text in PRESETS[persona].values())


def test_the_english_persona_answers_in_english() -> None:
    assert all("in English" in text for text in PRESETS["english"].values())


def test_the_personas_differ() -> None:
    asks = [prompts["ask"] for prompts in PRESETS.values()]
    assert len(set(asks)) == len(asks)


def test_the_environment_overrides_the_default_prompts_only() -> None:
    prompts = load_prompts({"PROMPT_ASK": "  Réponds en pirate.  "})

    assert prompts == {"ask": "Réponds en pirate.", "chill": DEFAULTS["chill"]}
    # The presets are not changed by an override: another persona's channel keeps its own.
    assert PRESETS["geek_fr"]["ask"] == DEFAULTS["ask"] != "Réponds en pirate."


def test_the_config_file_overrides_and_the_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "serdabot.yaml"
    config.write_text(
        "bot:\n  prompts:\n    ask: Du fichier.\n    chill: Du fichier aussi.\n", encoding="utf-8"
    )

    prompts = load_prompts({"SERDABOT_CONFIG": str(config), "PROMPT_CHILL": "De l'env."})

    assert prompts == {"ask": "Du fichier.", "chill": "De l'env."}


def test_an_unreadable_config_file_keeps_the_defaults(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("bot: [unclosed", encoding="utf-8")

    assert load_prompts({"SERDABOT_CONFIG": str(config)}) == DEFAULTS
    assert load_prompts({"SERDABOT_CONFIG": str(tmp_path / "missing.yaml")}) == DEFAULTS
