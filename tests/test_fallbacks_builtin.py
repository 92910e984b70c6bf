from __future__ import annotations

import importlib

from fallbacks.builtin import PHRASES

seed = importlib.import_module("fallbacks.migrations.0002_seed_phrases")


def test_it_covers_the_four_intents() -> None:
    assert set(PHRASES) == {"ask", "chill", "ask_timeout", "ask_error"}
    assert all(len(phrases) >= 3 for phrases in PHRASES.values())


def test_its_phrases_are_short_distinct_and_not_the_seeded_ones() -> None:
    texts = [text for phrases in PHRASES.values() for text in phrases]
    assert all(0 < len(text) < 200 and text.strip() == text for text in texts)
    assert len(set(texts)) == len(texts)
    seeded = {text for _, phrases in seed.INTENTS.values() for text in phrases}
    assert not seeded & set(texts)
