from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync
from django.db import connection

from fallbacks import builtin, services
from fallbacks.models import Phrase

pytestmark = pytest.mark.django_db


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
    assert "SynchronousOnlyOperation" in caplog.text
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
