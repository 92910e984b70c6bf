"""Answers are checked and cleaned before they reach chat."""

from __future__ import annotations

import pytest

from llm.cascade.errors import InvalidAnswer
from llm.cascade.validate import clean_answer, fit


def test_it_joins_lines_into_one() -> None:
    assert clean_answer("Un.\n\nDeux.\r\n  - trois\tquatre") == "Un. Deux. - trois quatre"


def test_it_drops_control_characters_and_thinking() -> None:
    text = "<think>\nLet me think about it.\n</think>\n\nBonjour\x07 le\u200b chat"

    assert clean_answer(text) == "Bonjour le chat"


def test_it_drops_lone_surrogates() -> None:
    # What json.loads makes of a model's "\\ud800": a str that UTF-8 cannot encode.
    answer = clean_answer("Bonjour\ud800 le \udfffchat 👋")

    assert answer == "Bonjour le chat 👋"
    answer.encode("utf-8")


@pytest.mark.parametrize(
    "text", ["", "   ", "\n\n", "<think>only thoughts</think>", "<think>cut mid-thought"]
)
def test_nothing_left_is_a_failure(text: str) -> None:
    with pytest.raises(InvalidAnswer) as error:
        clean_answer(text)

    assert error.value.kind == "EmptyAnswer"


def test_a_cut_off_answer_keeps_its_last_whole_sentence() -> None:
    text = "Python est un langage. Il est partout ! Il sert au web, à la scie"

    assert clean_answer(text, finish_reason="length") == "Python est un langage. Il est partout !"


def test_a_cut_off_answer_without_a_sentence_keeps_its_whole_words() -> None:
    assert clean_answer("Python sert au web, à la scie", finish_reason="length") == "Python sert au web, à la"


def test_a_complete_answer_keeps_its_last_words() -> None:
    assert clean_answer("Pas de point final", finish_reason="stop") == "Pas de point final"


def test_a_long_answer_is_cut_at_a_word_boundary() -> None:
    text = " ".join(["mot"] * 300)

    cleaned = clean_answer(text, max_chars=100)

    assert len(cleaned) <= 100
    assert cleaned.endswith("mot…")


def test_a_long_answer_is_cut_after_a_sentence_when_one_ends_late_enough() -> None:
    text = "A" * 60 + ". " + "b " * 100

    assert fit(text, 100) == "A" * 60 + "."


@pytest.mark.parametrize("limit", [1, 2, 5, 50, 499, 500])
def test_it_never_exceeds_the_limit(limit: int) -> None:
    text = "https://example.com/" + "x" * 1000 + " fin."

    assert 0 < len(clean_answer(text, max_chars=limit)) <= limit
