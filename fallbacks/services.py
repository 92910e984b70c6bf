"""What the rest of the bot calls: a fallback phrase for an intent, and phrase management."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable

from asgiref.sync import sync_to_async
from django.db import transaction

from fallbacks import builtin, cache
from fallbacks.models import Intent, Phrase

log = logging.getLogger("fallbacks.services")

DEFAULT_INTENT = "chill"
SILENT_REPLY = "Réponse automatique indisponible pour le moment."
MINIMAL_REPLY = "🤖"
MODES = ("fun", "silent", "minimal")

_warned_modes: set[str] = set()


def get_fallback_response(intent: str, mode: str = "fun") -> str:
    if mode == "silent":
        return SILENT_REPLY
    if mode == "minimal":
        return MINIMAL_REPLY
    if mode != "fun" and mode not in _warned_modes:
        _warned_modes.add(mode)
        log.warning("unknown fallback mode %r (expected one of %s), using fun", mode, ", ".join(MODES))
    try:
        return random.choice(_choices(cache.current(), intent))
    except Exception:
        # Whatever went wrong, the chat still gets an answer.
        log.exception("fallback phrase lookup failed for intent %r", intent)
        return random.choice(builtin.PHRASES[DEFAULT_INTENT])


def _choices(phrases: cache.Phrases, intent: str) -> tuple[str, ...]:
    return (
        phrases.get(intent)
        or phrases.get(DEFAULT_INTENT)
        or builtin.PHRASES.get(intent)
        or builtin.PHRASES[DEFAULT_INTENT]
    )


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
    return len(new)


def warm() -> None:
    """Load the phrases into memory. Sync code only: call it at bot start."""
    cache.reload()


def invalidate() -> None:
    """Forget the phrases; the next sync call reloads them, async callers get built-ins until then."""
    cache.clear()


async def reload_from_signal() -> None:
    """For a channel-layer handler: another process changed the phrases."""
    await sync_to_async(cache.reload)()
