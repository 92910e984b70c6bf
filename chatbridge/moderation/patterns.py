"""Which regular expressions may become blocked terms, and the engine that runs them.

Every answer is searched with all of them, on the bot's event loop: a pattern that
backtracks for minutes would stall chat, and Python's `re` cannot be interrupted. So the
patterns run on RE2 (google-re2), whose search time is linear in the text whatever the
pattern: `(a|a)*b` costs what `ab` costs. RE2 has no lookarounds nor backreferences and
refuses repeats over 1,000; those patterns are refused with a reason. A pattern is also
refused when it matches an empty text (it would hold every answer), or when it nests one
repetition in another, like `(a+)+`: harmless on RE2, but almost always a mistake.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any

import re2

# The parser `re` itself uses (re._parser since 3.11; no public API walks a pattern).
_parser: Any = importlib.import_module("re._parser")
_constants: Any = importlib.import_module("re._constants")
_REPEATS = {_constants.MAX_REPEAT, _constants.MIN_REPEAT, getattr(_constants, "POSSESSIVE_REPEAT", None)}
UNBOUNDED = _constants.MAXREPEAT


# A refused pattern is the moderator's typo, said in their reply: not an error line in the log.
RE2_OPTIONS = re2.Options()
RE2_OPTIONS.log_errors = False


def compile_term(pattern: str) -> Any:
    """`pattern` on RE2 (linear-time search); raises re2.error for what RE2 does not support."""
    return re2.compile(pattern, options=RE2_OPTIONS)


def regex_problem(pattern: str) -> str:
    """Why `pattern` cannot be a blocked term, in words a moderator can act on; "" when it can."""
    try:
        compiled = re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        return f"not a valid regular expression ({exc})"
    try:
        compile_term(pattern)
    except re2.error:
        return (
            "not supported: lookarounds, backreferences and repeats over 1,000 are not "
            "(every answer is checked with a linear-time engine)"
        )
    if compiled.search("") is not None:
        return "it matches an empty text, so it would hold every answer"
    try:
        nested = _nested_repeat(_parser.parse(pattern))
    except Exception:  # the private parser changed: the check above already passed
        nested = False
    if nested:
        return "a repetition inside a repetition, like (a+)+, can take ages to check: write it without"
    return ""


# Strings in a set of alternatives before listing them is not worth it.
_LIMIT = 16


@dataclass(frozen=True, slots=True)
class _Info:
    exact: frozenset[str] | None  # every string the piece can match, when they are few
    need: frozenset[str] | None  # every match holds one of these (None: nothing known)
    # A repetition (x+): its match starts with one of `first` and ends with one of `last`,
    # which join the pieces before and after it.
    first: frozenset[str] | None = None
    last: frozenset[str] | None = None


def required_literals(pattern: str) -> frozenset[str]:
    """Strings one of which every match of `pattern` contains, lowercased (the text searched
    is lowercase); empty when none are known or the pattern is not understood.

    `zorg[o0]+` needs "zorg", `\\b(?:tg|ta gueule)\\b` needs "tg" or "ta gueule". A few `in`
    tests on them tell whether the pattern can match at all: most of the time it cannot,
    and the regex engine never runs.
    """
    try:
        info = _sequence(_parser.parse(pattern))
    except Exception:
        return frozenset()
    best = _better(info.need, info.exact)
    return best if best is not None and _score(best) else frozenset()


def _score(strings: frozenset[str] | None) -> int:
    return min((len(s) for s in strings), default=0) if strings else 0


def _better(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    """The set that filters more: longer shortest string, then fewer strings."""
    if a is None or b is None:
        return a if b is None else b
    if (_score(a), -len(a)) >= (_score(b), -len(b)):
        return a
    return b


def _sequence(items: Any) -> _Info:
    run: set[str] = {""}  # the strings the current run of listed pieces can match
    exact = True  # the whole sequence is listed so far
    best: frozenset[str] | None = None
    for op, av in items:
        info = _item(op, av)
        if info.exact is not None and len(run) * len(info.exact) <= _LIMIT:
            run = {a + b for a in run for b in info.exact}
            continue
        exact = False
        if info.first is not None and len(run) * len(info.first) <= _LIMIT:
            run = {a + b for a in run for b in info.first}
        best = _better(_better(best, frozenset(run)), info.need)
        if info.last is not None:
            run = set(info.last)
        elif info.exact is not None:
            run = set(info.exact)  # too many together: a new run starts here
        else:
            run = {""}
    best = _better(best, frozenset(run))
    return _Info(frozenset(run) if exact else None, best)


def _item(op: Any, av: Any) -> _Info:
    if op == _constants.LITERAL:
        return _Info(frozenset({chr(av).lower()}), None)
    if op in (_constants.AT, _constants.ASSERT, _constants.ASSERT_NOT):
        return _Info(frozenset({""}), None)  # takes no character: the run goes on
    if op == _constants.IN:
        return _Info(_class(av), None)
    if op == _constants.SUBPATTERN:
        return _sequence(av[3])
    if op == getattr(_constants, "ATOMIC_GROUP", None):
        return _sequence(av)
    if op == _constants.BRANCH:
        return _branch([_sequence(alternative) for alternative in av[1]])
    if op in _REPEATS:
        low, high, sub = av
        inner = _sequence(sub)
        if low == 0:
            if high == 1 and inner.exact is not None:
                return _Info(inner.exact | {""}, None)  # x? is x or nothing
            return _Info(None, None)
        # `low` first: x{1000000} must not build a million-character string to find out.
        if low <= _LIMIT and inner.exact is not None and len(inner.exact) ** low <= _LIMIT:
            first: set[str] = {""}
            for _ in range(low):  # the first `low` copies are always there, one after the other
                first = {a + b for a in first for b in inner.exact}
            if low == high:
                return _Info(frozenset(first), None)
            return _Info(None, frozenset(first), first=frozenset(first), last=inner.exact)
        return _Info(None, _better(inner.need, inner.exact))
    return _Info(None, None)  # any character, a class by category, a backreference...


def _class(items: Any) -> frozenset[str] | None:
    chars: set[str] = set()
    for op, av in items:
        if op == _constants.LITERAL:
            chars.add(chr(av).lower())
        elif op == _constants.RANGE and av[1] - av[0] < _LIMIT:
            chars.update(chr(c).lower() for c in range(av[0], av[1] + 1))
        else:  # negated, a category (\\d \\w), a wide range: too many to list
            return None
    return frozenset(chars) if len(chars) <= _LIMIT else None


def _branch(alternatives: list[_Info]) -> _Info:
    if all(a.exact is not None for a in alternatives):
        union = frozenset().union(*(a.exact for a in alternatives if a.exact is not None))
        if len(union) <= _LIMIT:
            return _Info(union, None)
    needs = [_better(a.need, a.exact) for a in alternatives]
    if any(need is None or not _score(need) for need in needs):
        return _Info(None, None)  # one way through needs nothing known
    return _Info(None, frozenset().union(*(n for n in needs if n is not None)))


def _nested_repeat(items: Any) -> bool:
    """True when a repetition of more than once holds another, one of the two unbounded."""
    for op, av in items:
        if op in _REPEATS:
            _, high, sub = av
            if high > 1 and _repeats_inside(sub, outer_unbounded=high == UNBOUNDED):
                return True
            if _nested_repeat(sub):
                return True
        elif any(_nested_repeat(sub) for sub in _subpatterns(op, av)):
            return True
    return False


def _repeats_inside(items: Any, *, outer_unbounded: bool) -> bool:
    for op, av in items:
        if op in _REPEATS:
            if av[1] > 1 and (outer_unbounded or av[1] == UNBOUNDED):
                return True
            subs = [av[2]]
        else:
            subs = _subpatterns(op, av)
        if any(_repeats_inside(sub, outer_unbounded=outer_unbounded) for sub in subs):
            return True
    return False


def _subpatterns(op: Any, av: Any) -> list[Any]:
    if op == _constants.SUBPATTERN:
        return [av[3]]
    if op == _constants.BRANCH:
        return list(av[1])
    if op in (_constants.ASSERT, _constants.ASSERT_NOT):
        return [av[1]]
    if op == _constants.GROUPREF_EXISTS:
        return [sub for sub in av[1:] if sub is not None]
    if op == getattr(_constants, "ATOMIC_GROUP", None):
        return [av]
    return []
