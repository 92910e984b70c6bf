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
MINIMUM = {"ask": 8, "chill": 19, "ask_timeout": 4, "ask_error": 3}


def migration_apps() -> Apps:
    state = MigrationExecutor(connection).loader.project_state(("fallbacks", "0002_seed_phrases"))
    return state.apps


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
    assert list(Intent.objects.values_list("slug", flat=True)) == ["greetings"]
    assert Phrase.objects.count() == 1


def test_it_can_run_again_without_duplicates() -> None:
    before = counts()
    apps = migration_apps()
    seed.seed(apps, None)
    assert counts() == before
    seed.unseed(apps, None)
    seed.seed(apps, None)
    assert counts() == before == {slug: len(texts) for slug, (_, texts) in seed.INTENTS.items()}


def test_migrations_match_the_models() -> None:
    call_command("makemigrations", "fallbacks", "--check", "--dry-run", stdout=StringIO())
