"""The phrases in memory, so a chat reply never waits on the database.

The whole mapping is replaced in one assignment, so readers on any thread see either
the old phrases or the new ones, never a half-built mix. Loads hold a lock so an
older read can never overwrite a newer one.
"""

from __future__ import annotations

import logging
import threading

from fallbacks import builtin
from fallbacks.models import Phrase
from serdabot.outage import describe

log = logging.getLogger("fallbacks.cache")

Phrases = dict[str, tuple[str, ...]]

_lock = threading.Lock()
_phrases: Phrases | None = None
_builtin_logged = False


def read_database() -> Phrases:
    rows = (
        Phrase.objects.filter(enabled=True, intent__enabled=True)
        .order_by("id")
        .values_list("intent__slug", "text")
    )
    grouped: dict[str, list[str]] = {}
    for slug, text in rows:
        if text.strip():
            grouped.setdefault(slug, []).append(text)
    return {slug: tuple(texts) for slug, texts in grouped.items()}


def _load_locked() -> Phrases:
    global _phrases, _builtin_logged
    phrases = read_database()
    _phrases = phrases
    _builtin_logged = False
    return phrases


def reload() -> bool:
    """Read the database again; on failure keep the phrases already in memory (or the built-in ones)."""
    global _builtin_logged
    try:
        with _lock:
            phrases = _load_locked()
    except Exception as exc:
        # One line, never a traceback: an unreachable database is an outage, not a bug.
        if _phrases is None:
            _builtin_logged = True  # said here: the first reply need not say it again
            log.warning(
                "could not read fallback phrases (%s); answering with built-in phrases", describe(exc)
            )
        else:
            log.warning("could not read fallback phrases (%s); keeping those in memory", describe(exc))
        return False
    log.info("loaded %d fallback phrases for %d intents", sum(map(len, phrases.values())), len(phrases))
    return True


def builtin_announced() -> None:
    """The caller told the operator the phrases cannot be read: built-in ones answer, quietly."""
    global _builtin_logged
    _builtin_logged = True


def clear() -> None:
    global _phrases, _builtin_logged
    with _lock:
        _phrases = None
        _builtin_logged = False


def current() -> Phrases:
    phrases = _phrases
    if phrases is not None:
        return phrases
    # Cold. A load already under way on another thread is not waited for.
    if not _lock.acquire(blocking=False):
        return _builtin("another thread is loading the phrases")
    try:
        return _phrases if _phrases is not None else _load_locked()
    except Exception as exc:
        # Includes SynchronousOnlyOperation: the bot's hot path runs in an event loop.
        return _builtin(f"{type(exc).__name__}: {exc}")
    finally:
        _lock.release()


def _builtin(reason: str) -> Phrases:
    global _builtin_logged
    if not _builtin_logged:
        _builtin_logged = True
        log.warning("fallback phrases not loaded (%s); answering with built-in phrases", reason)
    return builtin.PHRASES
