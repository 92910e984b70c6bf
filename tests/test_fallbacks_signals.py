from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import transaction

from fallbacks import services
from fallbacks.models import Intent, Phrase

pytestmark = pytest.mark.django_db

CaptureCommits = Callable[..., Any]


@pytest.fixture(autouse=True)
def warm_cache() -> Iterator[None]:
    services.invalidate()
    services.warm()
    yield
    services.invalidate()


def replies(intent: str, times: int = 30) -> set[str]:
    return {services.get_fallback_response(intent) for _ in range(times)}


def test_a_saved_phrase_is_served_once_committed(django_capture_on_commit_callbacks: CaptureCommits) -> None:
    intent = Intent.objects.create(slug="greetings")
    with django_capture_on_commit_callbacks() as callbacks:
        Phrase.objects.create(intent=intent, text="Coucou 👋")
    # Not committed yet: the cache still has the old phrases.
    assert "Coucou 👋" not in replies("greetings")
    for callback in callbacks:
        callback()
    assert replies("greetings") == {"Coucou 👋"}


def test_an_edited_phrase_is_served_without_restart(
    django_capture_on_commit_callbacks: CaptureCommits,
) -> None:
    phrases = list(Phrase.objects.filter(intent__slug="ask_error"))
    with django_capture_on_commit_callbacks(execute=True):
        for phrase in phrases[1:]:
            phrase.enabled = False
            phrase.save()
        phrases[0].text = "Réplique modifiée 🛠️"
        phrases[0].save()
    assert replies("ask_error") == {"Réplique modifiée 🛠️"}


def test_a_deleted_intent_is_no_longer_served(
    django_capture_on_commit_callbacks: CaptureCommits, caplog: pytest.LogCaptureFixture
) -> None:
    chill = set(Phrase.objects.filter(intent__slug="chill").values_list("text", flat=True))
    with caplog.at_level(logging.INFO, logger="fallbacks"), django_capture_on_commit_callbacks(execute=True):
        Intent.objects.get(slug="ask").delete()
    assert replies("ask") <= chill
    # One signal per deleted row, one reload for the whole transaction.
    reloads = [record for record in caplog.records if record.getMessage().startswith("loaded ")]
    assert len(reloads) == 1


def test_a_rolled_back_edit_changes_nothing(django_capture_on_commit_callbacks: CaptureCommits) -> None:
    before = replies("ask_timeout", times=100)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        Phrase.objects.filter(intent__slug="ask_timeout").delete()
        raise RuntimeError("changed my mind")
    assert replies("ask_timeout", times=100) <= before
    assert Phrase.objects.filter(intent__slug="ask_timeout").exists()
