"""The blocked terms, in memory, checked against every answer (and some questions).

Rows are loaded into an immutable snapshot: one index for everywhere, one per platform
with platform-wide terms, one per channel with terms of its own, each already holding
the wider terms. A check normalises the text once (chatbridge/moderation/normalize.py),
then looks its words up in sets: single words, phrases over the words that can start
one, stretched words against squeezed terms. Regular expressions are searched in the
normalised text all at once, as one RE2 set: a single linear pass says which of them
match. The set runs only when the text holds one of the fixed strings some pattern's
matches must contain (`zorg` for `zorg[o0]+`), found by one Python alternation, or when a
pattern has none: RE2 lets go of the GIL, and getting it back may wait on another thread.
Should RE2 refuse the set, each pattern is searched on its own, after the same test.

The snapshot is reloaded when a row is saved or deleted (chatbridge/moderation/signals.py),
on a change notice from another process, and by `refresh()`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import re2

from chatbridge.moderation.models import BlockedTerm
from chatbridge.moderation.normalize import Normalized, analyse, normalize, squeeze
from chatbridge.moderation.patterns import RE2_OPTIONS, compile_term, regex_problem, required_literals
from serdabot.database import database_label, load_through_outage
from serdabot.outage import Outage

log = logging.getLogger("chatbridge.moderation")

# Literals this short are in most texts, and many are slower to test than the regex itself.
MIN_LITERAL = 2
MAX_LITERALS = 16

Scope = tuple[str, str]  # (platform, channel); ("", "") everywhere, (platform, "") platform-wide


@dataclass(frozen=True, slots=True)
class TermRow:
    """What a check needs of a BlockedTerm row."""

    term: str
    platform: str = ""
    channel: str = ""
    regex: bool = False
    check_questions: bool = False
    pk: int | None = None


def scope_of(platform: str, channel: str) -> Scope:
    # Twitch logins are case-insensitive and written with or without "#"; Discord ids are digits.
    return platform.strip().lower(), channel.strip().lstrip("#").lower()


@dataclass(frozen=True, slots=True)
class _Regex:
    pattern: Any  # an RE2 pattern (patterns.compile_term): linear-time search
    term: str
    # Every match holds one of these (patterns.required_literals); empty: always searched.
    literals: tuple[str, ...] = ()
    source: str = ""  # the pattern as compiled (a capital makes it case-insensitive)


@dataclass(slots=True)
class Index:
    """The terms of one scope, wider scopes included, ready to match."""

    words: dict[str, str] = field(default_factory=dict)  # normalised word -> term as written
    phrases: dict[str, str] = field(default_factory=dict)  # "normalised words" -> term
    heads: set[str] = field(default_factory=set)  # first words of the phrases
    lengths: tuple[int, ...] = ()  # how many words the phrases have
    squeezed: dict[str, str] = field(default_factory=dict)  # squeeze(word) -> term
    filtered: tuple[_Regex, ...] = ()  # regexes searched only when one of their literals is there
    regexes: tuple[_Regex, ...] = ()  # the others, searched every time
    # All of them in one RE2 set: one linear pass over the text says which match.
    regex_set: Any = None
    in_set: tuple[_Regex, ...] = ()  # the set's patterns, by their index in it
    # The fixed strings of the `filtered` regexes, as one Python alternation: RE2 lets go of
    # the GIL on every call, and another thread (the history writer) may then keep the event
    # loop waiting for milliseconds. So the set runs only when one of these is in the text,
    # or when some regex has none (an ordinary answer then costs one RE2 call).
    literal_scan: re.Pattern[str] | None = None

    @property
    def empty(self) -> bool:
        return not (self.words or self.phrases or self.filtered or self.regexes)

    def match(self, text: str) -> str | None:
        if self.empty:
            return None  # no terms here: not even the normalising
        return self.match_normalized(analyse(text))

    def match_normalized(self, norm: Normalized) -> str | None:
        words = norm.words
        if self.words:
            # isdisjoint runs in C; the loop that says which word matched only runs on a hit.
            if not self.words.keys().isdisjoint(words):
                return next(self.words[w] for w in words if w in self.words)
            if norm.extras and not self.words.keys().isdisjoint(norm.extras):
                return next(self.words[w] for w in norm.extras if w in self.words)
            if norm.squeezed and not self.squeezed.keys().isdisjoint(norm.squeezed):
                return next(self.squeezed[w] for w in norm.squeezed if w in self.squeezed)
        if self.phrases and not self.heads.isdisjoint(words):
            found = self._phrase(words)
            if found is not None:
                return found
        if self.regex_set is not None:
            text = norm.text
            if self.regexes or (self.literal_scan is not None and self.literal_scan.search(text)):
                hits = self.regex_set.Match(text)
                if hits:
                    return self.in_set[min(hits)].term
            return None
        if self.filtered or self.regexes:
            text = norm.text
            for regex in self.filtered:
                # A substring test costs a fraction of a regex search, and mostly fails.
                for literal in regex.literals:
                    if literal in text:
                        if regex.pattern.search(text):
                            return regex.term
                        break
            for regex in self.regexes:
                if regex.pattern.search(text):
                    return regex.term
        return None

    def _phrase(self, words: list[str]) -> str | None:
        heads, phrases, count = self.heads, self.phrases, len(words)
        for i, word in enumerate(words):
            if word not in heads:
                continue
            for n in self.lengths:
                if i + n > count:
                    break
                term = phrases.get(" ".join(words[i : i + n]))
                if term is not None:
                    return term
        return None


def build_index(rows: Iterable[TermRow]) -> Index:
    index = Index()
    filtered: list[_Regex] = []
    regexes: list[_Regex] = []
    for row in rows:
        if row.regex:
            found = _compile(row)
            if found is None:
                continue
            compiled, source = found
            literals = required_literals(row.term)
            if literals and min(map(len, literals)) >= MIN_LITERAL and len(literals) <= MAX_LITERALS:
                # Longest first: the likeliest to rule the pattern out... or in, at once.
                ordered = tuple(sorted(literals, key=lambda s: (-len(s), s)))
                filtered.append(_Regex(compiled, row.term, ordered, source))
            else:
                regexes.append(_Regex(compiled, row.term, source=source))
            continue
        words = normalize(row.term).split()
        if not words:
            log.warning("blocked term #%s skipped: nothing left to match once normalised", row.pk)
            continue
        if len(words) == 1:
            index.words.setdefault(words[0], row.term)
            index.squeezed.setdefault(squeeze(words[0]), row.term)
        else:
            index.phrases.setdefault(" ".join(words), row.term)
            index.heads.add(words[0])
    index.lengths = tuple(sorted({key.count(" ") + 1 for key in index.phrases}))
    index.filtered, index.regexes = tuple(filtered), tuple(regexes)
    index.regex_set, index.in_set = regex_set([*filtered, *regexes])
    fixed = sorted({text for regex in filtered for text in regex.literals}, key=lambda s: (-len(s), s))
    index.literal_scan = re.compile("|".join(map(re.escape, fixed))) if fixed else None
    return index


def regex_set(regexes: list[_Regex]) -> tuple[Any, tuple[_Regex, ...]]:
    """One RE2 set of `regexes` (None without any, or if RE2 refuses the set: each is then
    searched on its own, as before)."""
    if not regexes:
        return None, ()
    try:
        patterns = re2.Set.SearchSet(RE2_OPTIONS)
        for regex in regexes:
            patterns.Add(regex.source)
        patterns.Compile()  # raises re2.error when RE2 cannot build it
    except re2.error as exc:
        log.warning("blocked terms: the regexes could not be combined (%s); searching them one by one", exc)
        return None, ()
    return patterns, tuple(regexes)


def _compile(row: TermRow) -> tuple[Any, str] | None:
    """The compiled pattern and the source it was compiled from; None for a refused one."""
    problem = regex_problem(row.term)
    if problem:
        log.warning("blocked term #%s skipped: %s", row.pk, problem)
        return None
    pattern = row.term
    # The normalised text is lowercase: `Con` written in a pattern still means con.
    if any(c.isupper() for c in pattern):
        pattern = f"(?i:{pattern})"
    try:
        return compile_term(pattern), pattern
    except re2.error as exc:  # global flags such as (?i) in the middle: keep it as written
        log.debug("blocked term #%s kept as written (%s)", row.pk, exc)
        return compile_term(row.term), row.term


@dataclass(frozen=True, slots=True)
class _Snapshot:
    everywhere: Index = field(default_factory=Index)
    platforms: dict[str, Index] = field(default_factory=dict)
    channels: dict[Scope, Index] = field(default_factory=dict)

    def find(self, platform: str, channel: str) -> Index:
        if not (self.platforms or self.channels):
            return self.everywhere  # the common case: global terms only, no key to build
        key = scope_of(platform, channel)
        return self.channels.get(key) or self.platforms.get(key[0]) or self.everywhere


def _snapshot(rows: list[TermRow]) -> _Snapshot:
    everywhere = [r for r in rows if not r.platform and not r.channel]
    by_platform: dict[str, list[TermRow]] = {}
    by_channel: dict[Scope, list[TermRow]] = {}
    for row in rows:
        platform, channel = scope_of(row.platform, row.channel)
        if channel:
            by_channel.setdefault((platform, channel), []).append(row)
        elif platform:
            by_platform.setdefault(platform, []).append(row)
    platforms = {p: build_index(everywhere + own) for p, own in by_platform.items()}
    channels = {
        (p, c): build_index(everywhere + by_platform.get(p, []) + own) for (p, c), own in by_channel.items()
    }
    return _Snapshot(build_index(everywhere), platforms, channels)


class BlockedTerms:
    """Every process's snapshot of the blocked terms (`blocked_terms` below)."""

    def __init__(self) -> None:
        self._answers = _Snapshot()
        self._questions = _Snapshot()
        self._outage: Outage | None = None
        self.count = 0

    @property
    def outage(self) -> Outage:
        # Made on first use: the database is named from settings this module may be imported before.
        if self._outage is None:
            self._outage = Outage("blocked terms", database_label(), log)
        return self._outage

    def match(self, platform: str, channel: str, text: str) -> str | None:
        """The term (as written) that `text` contains, global or this channel's; None if none."""
        return self._answers.find(platform, channel).match(text)

    def match_question(self, platform: str, channel: str, text: str) -> str | None:
        """Like match, with only the terms also checked against questions."""
        return self._questions.find(platform, channel).match(text)

    def use(self, rows: Iterable[TermRow]) -> None:
        """Replace the snapshot with these rows (what load() does with the database's)."""
        rows = list(rows)
        answers = _snapshot(rows)
        questions = _snapshot([r for r in rows if r.check_questions])
        # Two assignments, each atomic: a check reads the old snapshot or the new one.
        self._answers, self._questions = answers, questions
        self.count = len(rows)

    def clear(self) -> None:
        self.use(())

    def load(self) -> None:
        """Read every row (sync; never on the hot path). Rows that cannot be used are skipped,
        each with a log line."""
        rows = [
            TermRow(term, platform, channel, regex, questions, pk)
            for pk, term, platform, channel, regex, questions in BlockedTerm.objects.values_list(
                "pk", "term", "platform", "channel", "regex", "check_questions"
            )
        ]
        self.use(rows)
        log.info("loaded %d blocked terms", len(rows))

    async def refresh(self) -> bool:
        """load(), for the event loop: a database outage keeps the last snapshot, said once."""
        return await load_through_outage(self.load, self.outage)


# One snapshot per process, shared by the handler and the signals.
blocked_terms = BlockedTerms()
