"""The phrases and custom commands in memory, so a chat reply never waits on the database.

One read builds a whole `Snapshot` (phrases, their languages, the intents' command
settings), and it replaces the previous one in one assignment, so readers on any thread
see either the old state or the new one, never a half-built mix. Loads hold a lock so an
older read can never overwrite a newer one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field

from django.db.models import FilteredRelation, Q

from fallbacks import builtin
from fallbacks.models import Intent, Permission
from serdabot.outage import describe

log = logging.getLogger("fallbacks.cache")

Phrases = dict[str, tuple[str, ...]]
# slug -> language -> that language's phrases plus those for any language; "" -> the latter only.
ByLanguage = dict[str, dict[str, tuple[str, ...]]]


@dataclass(frozen=True, slots=True)
class IntentConfig:
    """An enabled intent's chat command settings, as stored (aliases not parsed yet)."""

    slug: str
    command: bool
    aliases: str = ""
    ask_model: bool = False
    prompt: str = ""
    permission: str = Permission.EVERYONE.value
    user_cooldown: int | None = None
    channel_cooldown: int | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    phrases: Phrases  # every enabled phrase of each enabled intent that has some, any language
    by_language: ByLanguage = field(default_factory=dict)
    intents: tuple[IntentConfig, ...] = ()  # every enabled intent, by slug

    def phrases_for(self, slug: str, language: str) -> tuple[str, ...]:
        """`slug`'s phrases in `language` or for any language, else all of them (empty if none)."""
        everything = self.phrases.get(slug, ())
        if not everything or not language:
            return everything
        languages = self.by_language.get(slug, {})
        return languages.get(language) or languages.get("") or everything


def _group(rows: list[tuple[str, str, str]]) -> tuple[Phrases, ByLanguage]:
    grouped: dict[str, list[tuple[str, str]]] = {}
    for slug, text, language in rows:
        grouped.setdefault(slug, []).append((text, language))
    phrases: Phrases = {}
    by_language: ByLanguage = {}
    for slug, entries in grouped.items():
        phrases[slug] = tuple(text for text, _ in entries)
        languages = {language for _, language in entries if language}
        localized = {
            language: tuple(text for text, tagged in entries if tagged in (language, ""))
            for language in languages
        }
        untagged = tuple(text for text, tagged in entries if not tagged)
        if untagged:
            localized[""] = untagged
        by_language[slug] = localized
    return phrases, by_language


def read_database() -> Snapshot:
    # One statement, so the phrases and the command settings come from the same committed
    # state. The left join keeps intents without enabled phrases (a model-only command).
    rows = (
        Intent.objects.filter(enabled=True)
        .annotate(phrase=FilteredRelation("phrases", condition=Q(phrases__enabled=True)))
        .order_by("slug", "phrase__id")
        .values_list(
            "slug",
            "command",
            "aliases",
            "ask_model",
            "prompt",
            "permission",
            "user_cooldown",
            "channel_cooldown",
            "phrase__text",
            "phrase__language",
        )
    )
    intents: dict[str, IntentConfig] = {}
    texts: list[tuple[str, str, str]] = []
    for slug, command, aliases, ask_model, prompt, permission, user_cd, channel_cd, text, language in rows:
        if slug not in intents:
            intents[slug] = IntentConfig(
                slug, command, aliases, ask_model, prompt, permission, user_cd, channel_cd
            )
        if text is not None and text.strip():
            texts.append((slug, text, (language or "").strip().lower()))
    phrases, by_language = _group(texts)
    return Snapshot(phrases, by_language, tuple(intents.values()))


def _builtin_snapshot() -> Snapshot:
    by_language: ByLanguage = {}
    for language, phrases in builtin.LANGUAGES.items():
        for slug, texts in phrases.items():
            by_language.setdefault(slug, {})[language] = texts
    return Snapshot(builtin.PHRASES, by_language)


BUILTIN = _builtin_snapshot()

_lock = threading.Lock()
_snapshot: Snapshot | None = None
_builtin_logged = False


def _load_locked() -> Snapshot:
    global _snapshot, _builtin_logged
    loaded = read_database()
    _snapshot = loaded
    _builtin_logged = False
    return loaded


def reload() -> bool:
    """Read the database again; on failure keep what is already in memory (or the built-in phrases)."""
    global _builtin_logged
    try:
        with _lock:
            loaded = _load_locked()
    except Exception as exc:
        # One line, never a traceback: an unreachable database is an outage, not a bug.
        if _snapshot is None:
            _builtin_logged = True  # said here: the first reply need not say it again
            log.warning(
                "could not read fallback phrases (%s); answering with built-in phrases", describe(exc)
            )
        else:
            log.warning("could not read fallback phrases (%s); keeping those in memory", describe(exc))
        return False
    log.info(
        "loaded %d fallback phrases for %d intents",
        sum(map(len, loaded.phrases.values())),
        len(loaded.phrases),
    )
    return True


def builtin_announced() -> None:
    """The caller told the operator the phrases cannot be read: built-in ones answer, quietly."""
    global _builtin_logged
    _builtin_logged = True


def clear() -> None:
    global _snapshot, _builtin_logged
    with _lock:
        _snapshot = None
        _builtin_logged = False


def snapshot() -> Snapshot:
    """What is in memory; loaded first if cold and the caller may touch the database."""
    loaded = _snapshot
    if loaded is not None:
        return loaded
    # Cold. In an event loop the database cannot be read (Django refuses it there): the
    # built-in phrases answer until a sync load (the bot's start, its retries) succeeds,
    # without a doomed query per chat line meanwhile.
    if _in_event_loop():
        return _builtin("not loaded yet; the database cannot be read from the event loop")
    # A load already under way on another thread is not waited for.
    if not _lock.acquire(blocking=False):
        return _builtin("another thread is loading the phrases")
    try:
        return _snapshot if _snapshot is not None else _load_locked()
    except Exception as exc:
        # Includes SynchronousOnlyOperation: the bot's hot path runs in an event loop.
        return _builtin(f"{type(exc).__name__}: {exc}")
    finally:
        _lock.release()


def is_loaded() -> bool:
    return _snapshot is not None


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def current() -> Phrases:
    """Every enabled phrase per intent, any language (the built-in French ones when cold)."""
    return snapshot().phrases


def _builtin(reason: str) -> Snapshot:
    global _builtin_logged
    if not _builtin_logged:
        _builtin_logged = True
        log.warning("fallback phrases not loaded (%s); answering with built-in phrases", reason)
    return BUILTIN
