from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from itertools import pairwise
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
    services.last_phrases.clear()
    yield
    services.invalidate()


def texts(slug: str, language: str | None = None) -> set[str]:
    phrases = Phrase.objects.filter(intent__slug=slug)
    if language is not None:
        phrases = phrases.filter(language=language)
    return set(phrases.values_list("text", flat=True))


def draws(
    intent: str, times: int, *, mode: str = "fun", language: str = "fr", channel: str = ""
) -> list[str]:
    return [
        services.choose_fallback(intent, mode, language=language, channel=channel).text for _ in range(times)
    ]


def repeats(sequence: list[str]) -> int:
    return sum(1 for previous, text in pairwise(sequence) if previous == text)


def intent_with(slug: str, *phrases: tuple[str, str]) -> Intent:
    """An intent with (text, language) phrases."""
    intent = Intent.objects.create(slug=slug)
    for text, language in phrases:
        Phrase.objects.create(intent=intent, text=text, language=language)
    return intent


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

    assert intents == ["ask", "ask_error", "ask_timeout", "blocked", "chill"]


def test_get_all_fallback_intents_leaves_out_intents_answered_from_chill() -> None:
    Intent.objects.filter(slug="ask").update(enabled=False)
    Phrase.objects.filter(intent__slug="ask_error").update(enabled=False)
    Intent.objects.create(slug="empty")

    assert services.get_all_fallback_intents() == ["ask_timeout", "blocked", "chill"]


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


def test_a_channel_in_english_gets_the_english_phrases() -> None:
    english = set(draws("ask", 100, language="en"))
    french = set(draws("ask", 100, language="fr"))

    assert english == texts("ask", "en")
    assert french == texts("ask", "fr")


def test_phrases_for_any_language_go_to_every_channel() -> None:
    intent = Intent.objects.get(slug="ask_error")
    Phrase.objects.create(intent=intent, text="Oups 💥", language="")

    assert "Oups 💥" in draws("ask_error", 200, language="en")
    assert "Oups 💥" in draws("ask_error", 200, language="fr")
    assert set(draws("ask_error", 200, language="en")) == {"Oups 💥", *texts("ask_error", "en")}


def test_an_intent_without_phrases_in_the_channels_language_answers_with_its_others() -> None:
    intent_with("planning", ("Live lundi, mercredi et vendredi à 20 h 📅", "fr"))
    # Its own phrase in French beats chill in English: the words answer what was asked.
    assert services.choose_fallback("planning", language="en") == (
        "planning",
        "Live lundi, mercredi et vendredi à 20 h 📅",
    )


def test_a_language_with_no_phrases_at_all_gets_the_untagged_ones_first() -> None:
    intent_with(
        "discord", ("Rejoins le serveur 🎧", "fr"), ("Join the server 🎧", "en"), ("discord.gg/x", "")
    )
    assert set(draws("discord", 30, language="de")) == {"discord.gg/x"}
    assert set(draws("discord", 100, language="")) == {
        "Rejoins le serveur 🎧",
        "Join the server 🎧",
        "discord.gg/x",
    }


def test_an_unknown_intent_answers_from_chill_in_the_channels_language() -> None:
    fallback = services.choose_fallback("does_not_exist", language="en")
    assert fallback.intent == "chill"
    assert set(draws("does_not_exist", 100, language="EN")) == texts("chill", "en")


def test_built_in_phrases_answer_in_the_channels_language() -> None:
    Intent.objects.all().delete()

    assert set(draws("ask", 50, language="en")) <= set(builtin.ENGLISH["ask"])
    assert set(draws("ask", 50, language="fr")) <= set(builtin.PHRASES["ask"])
    assert set(draws("blocked", 50, language="en")) <= set(builtin.ENGLISH["blocked"])
    assert set(draws("nope", 50, language="en")) <= set(builtin.ENGLISH["chill"])
    # A language the bot has no built-in phrases for: French, the default.
    assert set(draws("ask", 50, language="de")) <= set(builtin.PHRASES["ask"])


def test_the_blocked_intent_answers_in_the_channels_language() -> None:
    assert set(draws("blocked", 100, language="en")) == texts("blocked", "en")
    assert set(draws("blocked", 100)) == texts("blocked", "fr")


def test_a_channel_never_gets_the_same_phrase_twice_in_a_row() -> None:
    intent_with("duo", ("Pile 🪙", ""), ("Face 🪙", ""))

    sequence = draws("duo", 500, channel="twitch:streamer")

    assert repeats(sequence) == 0
    assert set(sequence) == {"Pile 🪙", "Face 🪙"}


def test_every_phrase_still_comes_up() -> None:
    intent_with("trio", ("Un", ""), ("Deux", ""), ("Trois", ""))

    sequence = draws("trio", 600, channel="twitch:streamer")

    assert repeats(sequence) == 0
    counts = {text: sequence.count(text) for text in ("Un", "Deux", "Trois")}
    assert min(counts.values()) > 100  # 200 each on average: none is starved


def test_a_single_phrase_repeats() -> None:
    intent_with("solo", ("Toujours la même 🔁", ""))

    assert draws("solo", 20, channel="twitch:streamer") == ["Toujours la même 🔁"] * 20


def test_channels_do_not_share_their_last_phrase() -> None:
    intent_with("duo", ("Pile 🪙", ""), ("Face 🪙", ""))

    interleaved = [
        services.choose_fallback("duo", channel=channel).text
        for _ in range(50)
        for channel in ("twitch:one", "discord:42")
    ]

    # Each channel alternates; had they shared one memory the whole sequence would too.
    assert repeats(interleaved[0::2]) == 0
    assert repeats(interleaved[1::2]) == 0
    assert repeats(interleaved) > 0


def test_intents_answered_from_chill_share_chills_last_phrase() -> None:
    kept = list(Phrase.objects.filter(intent__slug="chill", language="fr").order_by("id")[:2])
    Phrase.objects.filter(intent__slug="chill").exclude(pk__in=[p.pk for p in kept]).update(enabled=False)

    sequence = [
        services.choose_fallback(intent, channel="twitch:streamer").text
        for _ in range(100)
        for intent in ("unknown", "other_unknown", "chill")
    ]

    assert repeats(sequence) == 0


def test_the_last_phrases_are_bounded_and_the_least_recent_go_first() -> None:
    memory = services.LastPhrases(max_keys=3)
    pool = ("Pile", "Face")
    first = memory.pick(("one", "duo"), pool)
    memory.pick(("two", "duo"), pool)
    memory.pick(("three", "duo"), pool)
    second = memory.pick(("one", "duo"), pool)  # "one" is the most recent again
    memory.pick(("four", "duo"), pool)

    assert len(memory) == 3
    assert ("two", "duo") not in memory
    assert ("one", "duo") in memory
    assert second != first
    assert memory.pick(("one", "duo"), pool) == first


def test_silent_and_minimal_modes_ignore_the_no_repeat_rule() -> None:
    assert {services.choose_fallback("ask", "silent", channel="c").text for _ in range(3)} == {
        services.SILENT_REPLY
    }
    assert draws("ask", 3, mode="minimal", channel="c") == ["🤖"] * 3
