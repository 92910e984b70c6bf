"""What the rest of the bot calls: a fallback phrase for an intent, and phrase management."""

from __future__ import annotations

import logging
import random
import threading
from collections import OrderedDict
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


class LastPhrases:
    """The last phrase sent per (channel, phrase set), so the next one differs.

    Bounded: the least recently used keys go first. Called from the event loop and from
    sync_to_async threads, hence the lock (held for a dict operation, nothing more).
    """

    def __init__(self, max_keys: int = 10_000) -> None:
        self.max_keys = max_keys
        self._last: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def pick(self, key: tuple[str, str], pool: tuple[str, ...]) -> str:
        with self._lock:
            last = self._last.get(key)
            text = random.choice(pool)
            if text == last and len(pool) > 1:
                # Uniform over the others: shift by 1..n-1 from the repeated one.
                text = pool[(pool.index(text) + random.randrange(1, len(pool))) % len(pool)]
            self._last[key] = text
            self._last.move_to_end(key)
            if len(self._last) > self.max_keys:
                self._last.popitem(last=False)
            return text

    def last(self, key: tuple[str, str]) -> str | None:
        with self._lock:
            return self._last.get(key)

    def note(self, key: tuple[str, str], text: str) -> None:
        """`text` went out for `key`, picked elsewhere (another process's worker)."""
        with self._lock:
            self._last[key] = text
            self._last.move_to_end(key)
            if len(self._last) > self.max_keys:
                self._last.popitem(last=False)

    def __len__(self) -> int:
        return len(self._last)

    def __contains__(self, key: object) -> bool:
        return key in self._last

    def clear(self) -> None:
        with self._lock:
            self._last.clear()


last_phrases = LastPhrases()


def get_fallback_response(intent: str, mode: str = "fun") -> str:
    return choose_fallback(intent, mode).text


def choose_fallback(
    intent: str,
    mode: str = "fun",
    *,
    language: str = "fr",
    channel: str = "",
    memory: LastPhrases | None = None,
) -> Fallback:
    """A phrase for `intent`, and which phrase set it came from (chill when the intent has none).

    Phrases in `language` (or for any language) come first, then the intent's others.
    `channel` is any stable key of where the reply goes: the same channel never gets the
    same phrase of a set twice in a row while the set has more than one.
    In silent and minimal modes the fixed text stands in for `intent`'s phrases.
    `memory`: where the last phrases are kept (this process's by default).
    """
    if mode == "silent":
        return Fallback(intent, SILENT_REPLY)
    if mode == "minimal":
        return Fallback(intent, MINIMAL_REPLY)
    if mode != "fun" and mode not in _warned_modes:
        _warned_modes.add(mode)
        log.warning("unknown fallback mode %r (expected one of %s), using fun", mode, ", ".join(MODES))
    language = (language or "").strip().lower()
    try:
        used, pool = _choices(cache.snapshot(), intent, language)
        return Fallback(used, (memory or last_phrases).pick((channel, used), pool))
    except Exception:
        # Whatever went wrong, the chat still gets an answer.
        log.exception("fallback phrase lookup failed for intent %r", intent)
        phrases = builtin.LANGUAGES.get(language, builtin.PHRASES)
        return Fallback(DEFAULT_INTENT, random.choice(phrases[DEFAULT_INTENT]))


def _choices(snapshot: cache.Snapshot, intent: str, language: str) -> tuple[str, tuple[str, ...]]:
    for used, source in (
        (intent, snapshot),
        (DEFAULT_INTENT, snapshot),
        (intent, cache.BUILTIN),
    ):
        texts = source.phrases_for(used, language)
        if texts:
            return used, texts
    return DEFAULT_INTENT, cache.BUILTIN.phrases_for(DEFAULT_INTENT, language)


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


def loaded() -> bool:
    """Whether phrases from the database are in memory (not the built-in ones)."""
    return cache.is_loaded()


def database_unreachable() -> None:
    """Bot start found the database down and said so: built-in phrases answer without more warnings."""
    cache.builtin_announced()


def invalidate() -> None:
    """Forget the phrases; the next sync call reloads them, async callers get built-ins until then."""
    cache.clear()


async def reload_from_signal() -> None:
    """For a channel-layer handler: another process changed the phrases."""
    await sync_to_async(cache.reload)()
