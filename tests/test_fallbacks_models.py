from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from fallbacks.models import Intent, Phrase

pytestmark = pytest.mark.django_db

TOO_LONG = "A phrase can have at most 500 characters, Twitch refuses longer chat messages (this one has 501)."


@pytest.fixture
def intent() -> Intent:
    return Intent.objects.create(slug="greetings")


def test_it_refuses_a_phrase_over_500_characters_with_a_clear_message(intent: Intent) -> None:
    with pytest.raises(ValidationError) as caught:
        Phrase(intent=intent, text="x" * 501).full_clean()
    assert caught.value.message_dict == {"text": [TOO_LONG]}


def test_it_accepts_a_phrase_of_exactly_500_characters(intent: Intent) -> None:
    Phrase(intent=intent, text="x" * 500).full_clean()


def test_it_refuses_a_phrase_of_only_spaces(intent: Intent) -> None:
    with pytest.raises(ValidationError) as caught:
        Phrase(intent=intent, text="   ").full_clean()
    assert caught.value.message_dict == {"text": ["A phrase cannot be only spaces."]}


def test_it_refuses_the_same_phrase_twice_in_one_intent(intent: Intent) -> None:
    Phrase.objects.create(intent=intent, text="Coucou 👋")
    with pytest.raises(ValidationError):
        Phrase(intent=intent, text="Coucou 👋").full_clean()
    other = Intent.objects.create(slug="other")
    Phrase(intent=other, text="Coucou 👋").full_clean()


def test_it_shortens_long_phrases_in_their_name(intent: Intent) -> None:
    assert str(Phrase(intent=intent, text="court")) == "court"
    name = str(Phrase(intent=intent, text="a" * 100))
    assert len(name) == 60
    assert name.endswith("…")
    assert str(intent) == "greetings"
