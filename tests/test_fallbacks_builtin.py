from __future__ import annotations

import importlib

from fallbacks.builtin import ENGLISH, LANGUAGES, PHRASES

seed = importlib.import_module("fallbacks.migrations.0002_seed_phrases")
seed_0004 = importlib.import_module("fallbacks.migrations.0004_seed_blocked_and_english")

INTENTS = {"ask", "chill", "ask_timeout", "ask_error", "blocked"}


def test_it_covers_the_bots_intents_in_french_and_english() -> None:
    assert LANGUAGES == {"fr": PHRASES, "en": ENGLISH}
    for phrases in (PHRASES, ENGLISH):
        assert set(phrases) == INTENTS
        assert all(len(texts) >= 3 for texts in phrases.values())


def test_its_phrases_are_short_distinct_and_not_the_seeded_ones() -> None:
    texts = [text for phrases in (PHRASES, ENGLISH) for texts in phrases.values() for text in texts]
    assert all(0 < len(text) < 200 and text.strip() == text for text in texts)
    assert len(set(texts)) == len(texts)
    seeded = {text for _, phrases in seed.INTENTS.values() for text in phrases}
    seeded |= {text for phrases in seed_0004.ENGLISH.values() for text in phrases}
    seeded |= {text for phrases in seed_0004.BLOCKED[1].values() for text in phrases}
    assert not seeded & set(texts)
    # The caller prefixes "@user ", so a phrase never names anyone itself.
    assert not [text for text in texts if "@" in text]
