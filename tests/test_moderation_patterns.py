"""Which regexes may be blocked terms, and the fixed strings that let most checks skip them."""

from __future__ import annotations

import random
import re

import pytest

from chatbridge.moderation.patterns import regex_problem, required_literals

UNSUPPORTED = (
    "not supported: lookarounds, backreferences and repeats over 1,000 are not "
    "(every answer is checked with a linear-time engine)"
)


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("c[o0]n+ard", ""),
        (r"\b(tg|ta gueule)\b", ""),
        ("(a|b)+", ""),
        ("(a{1,3}){2}", ""),  # bounded both ways: no blow-up
        ("[", "not a valid regular expression (unterminated character set at position 0)"),
        ("a*", "it matches an empty text, so it would hold every answer"),
        ("x|", "it matches an empty text, so it would hold every answer"),
        ("(a+)+$", "a repetition inside a repetition, like (a+)+, can take ages to check: write it without"),
        (
            r"(\w+\s)+x",
            "a repetition inside a repetition, like (a+)+, can take ages to check: write it without",
        ),
        (
            "(?:a{1,3})+b",
            "a repetition inside a repetition, like (a+)+, can take ages to check: write it without",
        ),
        ("(?=(a+)+)b", UNSUPPORTED),
        (r"(\w)\1\1", UNSUPPORTED),  # a backreference
        ("a{99999999}", UNSUPPORTED),  # checked without building the repeated text
        ("(?<=x)y", UNSUPPORTED),
    ],
)
def test_it_says_why_a_pattern_cannot_be_blocked(pattern: str, problem: str) -> None:
    assert regex_problem(pattern) == problem


@pytest.mark.parametrize(
    ("pattern", "literals"),
    [
        ("zorg[o0]+", {"zorgo", "zorg0"}),
        (r"\b(?:tg|ta gueule)\b", {"tg", "ta gueule"}),
        ("n+[i1]+g+", {"ni", "n1"}),
        ("x(yz)?w", {"xw", "xyzw"}),
        ("(?i)TRUC", {"truc"}),
        ("a|bc", {"a", "bc"}),  # (terms.py searches this one every time: "a" is in most texts)
        (r"(\w)\1\1", set()),
        (r"\w+\d", set()),
    ],
)
def test_it_finds_the_strings_every_match_holds(pattern: str, literals: set[str]) -> None:
    assert set(required_literals(pattern)) == literals


PIECES = ["a", "b", "ab", "[ab]", "[bc]", ".", r"\b", " ", "c"]


def random_pattern(rng: random.Random, depth: int = 0) -> str:
    parts = []
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        if roll < 0.15 and depth < 2:
            piece = f"(?:{random_pattern(rng, depth + 1)}|{random_pattern(rng, depth + 1)})"
        elif roll < 0.25 and depth < 2:
            piece = f"({random_pattern(rng, depth + 1)})"
        else:
            piece = rng.choice(PIECES)
        parts.append(piece + rng.choice(["", "", "", "+", "?", "*", "{2}", "{1,3}", "{2,}"]))
    return "".join(parts)


@pytest.mark.parametrize("seed", range(20))
def test_a_text_a_pattern_matches_always_holds_one_of_its_strings(seed: int) -> None:
    # Over a three-letter alphabet, random patterns match random texts often enough to
    # catch a string that is not really required (a blocked term that would never hold).
    rng = random.Random(seed)
    checked = filtered = 0
    for _ in range(200):
        pattern = random_pattern(rng)
        if regex_problem(pattern):
            continue
        literals = required_literals(pattern)
        compiled = re.compile(pattern)
        for _ in range(20):
            text = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 30)))
            if compiled.search(text):
                checked += 1
                assert not literals or any(s in text for s in literals), (pattern, text, literals)
                filtered += bool(literals)
    assert checked > 100 and filtered > 50


def test_a_pattern_that_backtracks_on_re_is_linear_on_the_engine_used() -> None:
    """`(a|a)*b` takes seconds on `re` against 30 a's; the terms run on RE2, which answers at
    once. Not a timing test: a 60-a text would take hours on a backtracking engine."""
    from chatbridge.moderation.patterns import compile_term

    assert regex_problem("(a|a)*b") == ""
    assert compile_term("(a|a)*b").search("a" * 60 + "h!") is None
    assert compile_term("(a|a)*b").search("a" * 60 + "b") is not None


def test_a_large_repeat_count_does_not_expand() -> None:
    # x{1000} is refused by nothing but still must not be expanded into a huge literal set.
    assert required_literals("x{1000}") is not None
