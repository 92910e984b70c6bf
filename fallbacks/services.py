"""What the rest of the bot calls: a fallback phrase for an intent, and phrase management."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from typing import NamedTuple

from asgiref.sync import sync_to_async
from django.db import transaction

from fallbacks import builtin, cache
from fallbacks.models import Intent, Phrase

log = logging.getLogger("fallbacks.services")

DEFAULT_INTENT = "chill"
# The spec's words, exactly: code written against the original compares them.
SILENT_REPLY = "Commande temporairement indisponible."
MINIMAL_REPLY = "🤖"
MODES = ("fun", "silent", "minimal")

_warned_modes: set[str] = set()


class Fallback(NamedTuple):
    intent: str  # the phrase set the text came from: the one asked for, or chill standing in
    text: str


def get_fallback_response(intent: str, mode: str = "fun") -> str:
    return choose_fallback(intent, mode).text


def choose_fallback(intent: str, mode: str = "fun") -> Fallback:
    """A phrase for `intent`, and which phrase set it came from (chill when the intent has none).

    In silent and minimal modes the fixed text stands in for `intent`'s phrases.
    """
    if mode == "silent":
        return Fallback(intent, SILENT_REPLY)
    if mode == "minimal":
        return Fallback(intent, MINIMAL_REPLY)
    if mode != "fun" and mode not in _warned_modes:
        _warned_modes.add(mode)
        log.warning("unknown fallback mode %r (expected one of %s), using fun", mode, ", ".join(MODES))
    try:
        used, texts = _choices(cache.current(), intent)
        return Fallback(used, random.choice(texts))
    except Exception:
        # Whatever went wrong, the chat still gets an answer.
        log.exception("fallback phrase lookup failed for intent %r", intent)
        return Fallback(DEFAULT_INTENT, random.choice(builtin.PHRASES[DEFAULT_INTENT]))


def _choices(phrases: cache.Phrases, intent: str) -> tuple[str, tuple[str, ...]]:
    for used, source in (
        (intent, phrases),
        (DEFAULT_INTENT, phrases),
        (intent, builtin.PHRASES),
    ):
        texts = source.get(used)
        if texts:
            return used, texts
    return DEFAULT_INTENT, builtin.PHRASES[DEFAULT_INTENT]


def get_all_fallback_intents() -> list[str]:
    """The intents get_fallback_response answers from phrases of their own, sorted.

    Any other intent (unknown, disabled, without enabled phrases) is answered from chill.
    """
    phrases = cache.current()
    intents = {slug for slug, texts in phrases.items() if texts}
    if DEFAULT_INTENT not in intents:
        # As in _choices: with no chill phrases in the database, the built-in sets answer.
        intents.update(builtin.PHRASES)
    return sorted(intents)


def add_custom_fallback(intent: str, phrases: Iterable[str]) -> int:
    """Store new phrases for an intent (created if missing); returns how many were added.

    Raises ValidationError, adding nothing, if a phrase or the intent slug is invalid.
    """
    slug = intent.strip()
    texts = list(dict.fromkeys(text.strip() for text in phrases if text.strip()))
    for text in texts:
        # Checked before any write; the intent is not known yet, uniqueness is handled below.
        Phrase(text=text).full_clean(exclude=["intent"])
    with transaction.atomic():
        target = Intent.objects.filter(slug=slug).first()
        if target is None:
            target = Intent(slug=slug, description="Added with add_custom_fallback().")
            target.full_clean()
            target.save()
        existing = set(target.phrases.values_list("text", flat=True))
        new = [Phrase(intent=target, text=text) for text in texts if text not in existing]
        for phrase in new:
            phrase.save()  # post_save schedules the cache reload for after the commit
    if new and transaction.get_connection().in_atomic_block:
        # The caller's own transaction is still open (a test, a migration, a script's atomic
        # block), so the reload after commit has not run: reload now, through this connection,
        # so this process answers with the new phrases at once. Should the caller roll back,
        # they stay in this process's memory until the next reload.
        cache.reload()
    return len(new)


def warm() -> None:
    """Load the phrases into memory. Sync code only: call it at bot start."""
    cache.reload()


def database_unreachable() -> None:
    """Bot start found the database down and said so: built-in phrases answer without more warnings."""
    cache.builtin_announced()


def invalidate() -> None:
    """Forget the phrases; the next sync call reloads them, async callers get built-ins until then."""
    cache.clear()


async def reload_from_signal() -> None:
    """For a channel-layer handler: another process changed the phrases."""
    await sync_to_async(cache.reload)()
