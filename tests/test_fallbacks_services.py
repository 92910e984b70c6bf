from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from fallbacks import builtin, services
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


def replies(intent: str, times: int = 30, mode: str = "fun") -> set[str]:
    return {services.get_fallback_response(intent, mode) for _ in range(times)}


def test_it_answers_with_a_phrase_of_the_intent() -> None:
    for slug in ("ask", "chill", "ask_timeout", "ask_error"):
        assert replies(slug) <= texts(slug)


def test_it_picks_among_several_phrases() -> None:
    assert len(replies("chill", times=200)) > 1


def test_it_answers_with_the_spec_sentence_in_silent_mode() -> None:
    for intent in ("ask", "chill", "ask_error", "unknown"):
        assert services.get_fallback_response(intent, "silent") == "Commande temporairement indisponible."


def test_it_answers_with_an_emoji_in_minimal_mode() -> None:
    assert services.get_fallback_response("ask", "minimal") == "🤖"


def test_it_treats_an_unknown_mode_as_fun_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="fallbacks"):
        assert replies("ask", times=5, mode="loud") <= texts("ask")
    warnings = [record for record in caplog.records if "unknown fallback mode 'loud'" in record.getMessage()]
    assert len(warnings) == 1


def test_it_answers_an_unknown_intent_from_chill() -> None:
    assert replies("does_not_exist") <= texts("chill")
    assert replies("") <= texts("chill")


def test_it_answers_a_disabled_intent_from_chill() -> None:
    Intent.objects.filter(slug="ask").update(enabled=False)
    assert replies("ask") <= texts("chill")


def test_it_answers_an_intent_without_enabled_phrases_from_chill() -> None:
    Phrase.objects.filter(intent__slug="ask_error").update(enabled=False)
    assert replies("ask_error") <= texts("chill")


def test_it_never_returns_a_disabled_phrase() -> None:
    kept = Phrase.objects.filter(intent__slug="ask").first()
    assert kept is not None
    Phrase.objects.filter(intent__slug="ask").exclude(pk=kept.pk).update(enabled=False)
    assert replies("ask", times=50) == {kept.text}


def test_it_answers_with_built_in_phrases_when_the_database_has_none() -> None:
    Intent.objects.all().delete()
    assert replies("ask") <= set(builtin.PHRASES["ask"])
    assert replies("unknown") <= set(builtin.PHRASES["chill"])


def test_add_custom_fallback_stores_new_phrases() -> None:
    added = services.add_custom_fallback(
        "greetings", ["Coucou 👋", "  ", "Salut la compagnie !", "Coucou 👋"]
    )
    assert added == 2
    intent = Intent.objects.get(slug="greetings")
    assert intent.enabled
    assert texts("greetings") == {"Coucou 👋", "Salut la compagnie !"}
    services.invalidate()
    assert replies("greetings") == {"Coucou 👋", "Salut la compagnie !"}


def test_add_custom_fallback_skips_phrases_already_there() -> None:
    before = texts("ask")
    existing = sorted(before)[0]
    assert services.add_custom_fallback("ask", [existing, f"  {existing}  ", "Nouvelle réplique 🤖"]) == 1
    assert texts("ask") == {*before, "Nouvelle réplique 🤖"}


def test_add_custom_fallback_refuses_a_phrase_over_500_characters() -> None:
    with pytest.raises(ValidationError) as caught:
        services.add_custom_fallback("greetings", ["Coucou 👋", "x" * 501])
    assert "at most 500 characters" in str(caught.value)
    assert "this one has 501" in str(caught.value)
    assert not Intent.objects.filter(slug="greetings").exists()
    assert not Phrase.objects.filter(text="Coucou 👋").exists()


def test_add_custom_fallback_refuses_an_invalid_intent_name() -> None:
    with pytest.raises(ValidationError):
        services.add_custom_fallback("pas un slug !", ["Coucou 👋"])
    assert not Phrase.objects.filter(text="Coucou 👋").exists()


def test_add_custom_fallback_refreshes_a_warm_cache(
    django_capture_on_commit_callbacks: CaptureCommits,
) -> None:
    services.warm()
    assert replies("greetings") <= texts("chill")
    with django_capture_on_commit_callbacks(execute=True):
        services.add_custom_fallback("greetings", ["Coucou 👋"])
    assert replies("greetings") == {"Coucou 👋"}


def test_choose_fallback_says_which_phrase_set_answered() -> None:
    Intent.objects.filter(slug="ask").update(enabled=False)

    timeout = services.choose_fallback("ask_timeout")
    disabled = services.choose_fallback("ask")
    unknown = services.choose_fallback("does_not_exist")

    assert timeout.intent == "ask_timeout" and timeout.text in texts("ask_timeout")
    assert disabled.intent == "chill" and disabled.text in texts("chill")
    assert unknown.intent == "chill" and unknown.text in texts("chill")
    assert services.choose_fallback("ask_error", "silent") == ("ask_error", services.SILENT_REPLY)
    assert services.choose_fallback("ask", "minimal") == ("ask", "🤖")


def test_get_all_fallback_intents_lists_the_seeded_intents() -> None:
    intents = services.get_all_fallback_intents()

    assert intents == ["ask", "ask_error", "ask_timeout", "chill"]


def test_get_all_fallback_intents_leaves_out_intents_answered_from_chill() -> None:
    Intent.objects.filter(slug="ask").update(enabled=False)
    Phrase.objects.filter(intent__slug="ask_error").update(enabled=False)
    Intent.objects.create(slug="empty")

    assert services.get_all_fallback_intents() == ["ask_timeout", "chill"]


def test_get_all_fallback_intents_lists_the_built_in_sets_when_the_database_has_none() -> None:
    Intent.objects.all().delete()

    assert services.get_all_fallback_intents() == sorted(builtin.PHRASES)
    assert replies("ask_timeout") <= set(builtin.PHRASES["ask_timeout"])


def test_a_custom_intent_answers_at_once_inside_the_callers_transaction() -> None:
    # The test's own transaction never commits, so only the reload add_custom_fallback
    # does itself can refresh this warm cache.
    services.warm()
    assert replies("test_custom") <= texts("chill")

    services.add_custom_fallback("test_custom", ["Test 1", "Test 2"])

    assert replies("test_custom") == {"Test 1", "Test 2"}
    assert "test_custom" in services.get_all_fallback_intents()


@pytest.mark.django_db(transaction=True)
def test_a_custom_intent_answers_at_once_outside_a_transaction() -> None:
    # Transactional tests run last, after others emptied the tables: no seeded phrases here.
    services.warm()
    assert not replies("test_custom") & {"Test 1", "Test 2"}

    services.add_custom_fallback("test_custom", ["Test 1", "Test 2"])

    assert replies("test_custom") == {"Test 1", "Test 2"}
    assert "test_custom" in services.get_all_fallback_intents()
