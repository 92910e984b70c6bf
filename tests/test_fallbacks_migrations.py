from __future__ import annotations

import importlib
from io import StringIO

import pytest
from django.apps.registry import Apps
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from fallbacks.models import Intent, Phrase

pytestmark = pytest.mark.django_db

seed = importlib.import_module("fallbacks.migrations.0002_seed_phrases")
seed_0004 = importlib.import_module("fallbacks.migrations.0004_seed_blocked_and_english")
MINIMUM = {"ask": 8, "chill": 19, "ask_timeout": 4, "ask_error": 3}


def migration_apps(name: str = "0002_seed_phrases") -> Apps:
    state = MigrationExecutor(connection).loader.project_state(("fallbacks", name))
    return state.apps


def seeded_counts() -> dict[str, int]:
    """What 0002 then 0004 seed, per intent."""
    expected = {slug: len(texts) for slug, (_, texts) in seed.INTENTS.items()}
    for slug, texts in seed_0004.ENGLISH.items():
        expected[slug] += len(texts)
    expected["blocked"] = sum(map(len, seed_0004.BLOCKED[1].values()))
    return expected


def languages(slug: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for language in Phrase.objects.filter(intent__slug=slug).values_list("language", flat=True):
        found[language] = found.get(language, 0) + 1
    return found


def counts() -> dict[str, int]:
    return {intent.slug: intent.phrases.count() for intent in Intent.objects.all()}


def test_it_seeds_the_four_intents_with_enough_phrases() -> None:
    seeded = counts()
    assert set(seeded) >= set(MINIMUM)
    for slug, minimum in MINIMUM.items():
        assert seeded[slug] >= minimum, slug
    assert Intent.objects.filter(slug__in=MINIMUM, enabled=True).count() == 4


def test_its_phrases_are_short_distinct_and_enabled() -> None:
    texts = list(Phrase.objects.values_list("text", flat=True))
    assert all(0 < len(text) < 200 and text.strip() == text for text in texts)
    assert len(set(texts)) == len(texts)
    assert not Phrase.objects.filter(enabled=False).exists()
    # The caller prefixes "@user ", so a phrase never names anyone itself.
    assert not [text for text in texts if "@" in text]


def test_it_reverses_by_removing_the_seeded_intents_only() -> None:
    custom = Intent.objects.create(slug="greetings")
    Phrase.objects.create(intent=custom, text="Coucou 👋")
    apps = migration_apps()
    seed.unseed(apps, None)
    # 0004's `blocked` intent is not 0002's to remove.
    assert list(Intent.objects.values_list("slug", flat=True)) == ["blocked", "greetings"]
    assert Phrase.objects.exclude(intent__slug="blocked").count() == 1


def test_it_can_run_again_without_duplicates() -> None:
    before = counts()
    assert before == seeded_counts()
    # Today's models: the table has 0003's columns, which 0002's models would leave empty.
    apps = migration_apps("0004_seed_blocked_and_english")
    seed.seed(apps, None)
    assert counts() == before
    seed.unseed(apps, None)
    seed.seed(apps, None)
    assert counts() == {slug: len(texts) for slug, (_, texts) in seed.INTENTS.items()} | {
        "blocked": before["blocked"]
    }


def test_0004_seeds_the_blocked_intent_in_french_and_english() -> None:
    blocked = Intent.objects.get(slug="blocked")
    assert blocked.enabled
    assert not blocked.command  # `!blocked` in chat means nothing
    found = languages("blocked")
    assert set(found) == {"fr", "en"}
    assert found["fr"] >= 3 and found["en"] >= 3


def test_0004_keeps_the_bots_own_intents_out_of_chat_commands() -> None:
    commands = dict(Intent.objects.values_list("slug", "command"))
    assert commands == {
        "ask": True,
        "chill": True,
        "ask_timeout": False,
        "ask_error": False,
        "blocked": False,
    }


def test_0004_tags_0002s_phrases_french_and_adds_english_ones() -> None:
    for slug, (_, texts) in seed.INTENTS.items():
        assert set(
            Phrase.objects.filter(intent__slug=slug, text__in=texts).values_list("language", flat=True)
        ) == {"fr"}
        assert languages(slug) == {"fr": len(texts), "en": len(seed_0004.ENGLISH[slug])}


def test_0004_leaves_a_streamers_own_phrases_alone() -> None:
    ask = Intent.objects.get(slug="ask")
    mine = Phrase.objects.create(intent=ask, text="Pas de réponse ce soir, le stream d'abord 🎮")
    custom = Intent.objects.create(slug="greetings")
    # The same words as an English seed, in the streamer's own intent.
    twin = Phrase.objects.create(intent=custom, text=seed_0004.ENGLISH["chill"][0])
    apps = migration_apps("0004_seed_blocked_and_english")

    seed_0004.seed(apps, None)
    mine.refresh_from_db()
    assert mine.language == ""

    seed_0004.unseed(apps, None)
    mine.refresh_from_db()
    twin.refresh_from_db()
    assert mine.language == ""
    assert twin.intent_id == custom.pk


def test_0004_reverses_and_runs_again_without_duplicates() -> None:
    before = counts()
    apps = migration_apps("0004_seed_blocked_and_english")
    operation = seed_0004.Migration.operations[0]
    assert operation.reversible

    seed_0004.unseed(apps, None)
    assert not Intent.objects.filter(slug="blocked").exists()
    assert not Phrase.objects.filter(language="en").exists()
    assert counts() == {slug: len(texts) for slug, (_, texts) in seed.INTENTS.items()}

    seed_0004.seed(apps, None)
    seed_0004.seed(apps, None)
    assert counts() == before
    assert not Intent.objects.get(slug="blocked").command


def test_migrations_match_the_models() -> None:
    call_command("makemigrations", "fallbacks", "--check", "--dry-run", stdout=StringIO())
