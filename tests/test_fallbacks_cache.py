from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection

from fallbacks import builtin, cache, services
from fallbacks.models import Intent, Phrase

pytestmark = pytest.mark.django_db

CaptureCommits = Callable[..., Any]


@pytest.fixture(autouse=True)
def cold_cache() -> Iterator[None]:
    services.invalidate()
    yield
    services.invalidate()


def texts(slug: str) -> set[str]:
    return set(Phrase.objects.filter(intent__slug=slug).values_list("text", flat=True))


def make_database_unreadable() -> None:
    # A real failure: the table is gone. The test's transaction is rolled back afterwards.
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {quote('fallbacks_phrase')} RENAME TO {quote('fallbacks_phrase_gone')}")


async def reply_in_event_loop(intent: str) -> str:
    return services.get_fallback_response(intent)


def test_it_answers_with_built_in_phrases_when_the_database_is_unreadable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_database_unreadable()
    with caplog.at_level(logging.WARNING, logger="fallbacks"):
        assert services.get_fallback_response("ask") in builtin.PHRASES["ask"]
        assert services.get_fallback_response("chill") in builtin.PHRASES["chill"]
        assert services.get_fallback_response("nope") in builtin.PHRASES["chill"]
    warnings = [record for record in caplog.records if "built-in phrases" in record.getMessage()]
    assert len(warnings) == 1


def test_it_keeps_the_phrases_it_has_when_a_reload_fails() -> None:
    expected = texts("ask_error")
    services.warm()
    make_database_unreadable()
    services.warm()
    assert services.get_fallback_response("ask_error") in expected


def test_a_warm_cache_answers_inside_an_event_loop() -> None:
    services.warm()
    # Any database access here would raise SynchronousOnlyOperation and give a built-in phrase.
    assert asyncio.run(reply_in_event_loop("ask")) in texts("ask")


def test_a_cold_cache_inside_an_event_loop_answers_with_built_in_phrases(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="fallbacks"):
        reply = asyncio.run(reply_in_event_loop("ask_timeout"))
    assert reply in builtin.PHRASES["ask_timeout"]
    # Said once, without trying a query Django would refuse there (one per chat line otherwise).
    assert "cannot be read from the event loop" in caplog.text
    # Back in sync code the database is readable, so the next reply comes from it.
    assert services.get_fallback_response("ask_timeout") in texts("ask_timeout")


def test_reload_from_signal_picks_up_changes_made_elsewhere() -> None:
    services.warm()
    kept = Phrase.objects.filter(intent__slug="chill").first()
    assert kept is not None
    # update() sends no signal: this stands for an edit made by another process.
    Phrase.objects.filter(intent__slug="chill").exclude(pk=kept.pk).update(enabled=False)
    assert len({services.get_fallback_response("chill") for _ in range(100)}) > 1
    async_to_sync(services.reload_from_signal)()
    assert {services.get_fallback_response("chill") for _ in range(30)} == {kept.text}


def test_the_snapshot_holds_phrases_languages_and_command_settings() -> None:
    planning = Intent.objects.create(
        slug="planning",
        aliases="agenda",
        ask_model=True,
        prompt="Donne le planning.",
        permission="moderators",
        user_cooldown=10,
        channel_cooldown=3,
    )
    Phrase.objects.create(intent=planning, text="Lundi 20 h 📅", language="fr")
    Phrase.objects.create(intent=planning, text="Monday 8 pm 📅", language="en")
    Phrase.objects.create(intent=planning, text="📅", language="")
    Phrase.objects.create(intent=planning, text="Jamais le dimanche", enabled=False)
    Intent.objects.create(slug="quiz")  # no phrases: a command all the same
    Intent.objects.create(slug="off", enabled=False)

    assert cache.reload()
    snapshot = cache.snapshot()

    assert snapshot.phrases["planning"] == ("Lundi 20 h 📅", "Monday 8 pm 📅", "📅")
    assert snapshot.phrases_for("planning", "fr") == ("Lundi 20 h 📅", "📅")
    assert snapshot.phrases_for("planning", "en") == ("Monday 8 pm 📅", "📅")
    assert snapshot.phrases_for("planning", "de") == ("📅",)
    assert snapshot.phrases_for("quiz", "fr") == ()
    intents = {intent.slug: intent for intent in snapshot.intents}
    assert set(intents) == {"ask", "ask_error", "ask_timeout", "blocked", "chill", "planning", "quiz"}
    assert intents["planning"] == cache.IntentConfig(
        "planning", True, "agenda", True, "Donne le planning.", "moderators", 10, 3
    )
    assert not intents["blocked"].command
    # Callers that only want the phrases keep their mapping.
    assert cache.current() is snapshot.phrases


def test_a_cold_snapshot_in_an_event_loop_is_the_built_in_one() -> None:
    async def in_event_loop() -> cache.Snapshot:
        return cache.snapshot()

    snapshot = asyncio.run(in_event_loop())

    assert snapshot is cache.BUILTIN
    assert snapshot.intents == ()
    assert snapshot.phrases_for("ask", "en") == builtin.ENGLISH["ask"]
    assert snapshot.phrases_for("ask", "fr") == builtin.PHRASES["ask"]


def test_a_saved_intent_reloads_phrases_and_commands_together(
    django_capture_on_commit_callbacks: CaptureCommits,
) -> None:
    services.warm()
    before = cache.snapshot()
    with django_capture_on_commit_callbacks(execute=True):
        discord = Intent.objects.create(slug="discord", aliases="dc")
        Phrase.objects.create(intent=discord, text="discord.gg/serda 🎧", language="")

    after = cache.snapshot()
    assert after is not before
    assert after.phrases["discord"] == ("discord.gg/serda 🎧",)
    assert [intent.aliases for intent in after.intents if intent.slug == "discord"] == ["dc"]

    with django_capture_on_commit_callbacks(execute=True):
        discord.enabled = False
        discord.save()

    assert "discord" not in cache.current()
    assert "discord" not in {intent.slug for intent in cache.snapshot().intents}


def test_a_failed_reload_keeps_the_commands_too() -> None:
    Intent.objects.create(slug="discord", aliases="dc")
    services.warm()
    make_database_unreadable()

    assert not cache.reload()

    assert "discord" in {intent.slug for intent in cache.snapshot().intents}
