"""Check and clean a model's answer before it goes anywhere near chat.

A model can answer nothing, several paragraphs, a hidden `<think>` block, or stop
mid-word because it ran out of tokens. What comes out of here is one line of at
most `max_chars`, cut at a sentence or word boundary; nothing usable is a failure
of that tier for that message (`InvalidAnswer`), so the cascade moves on.
"""

from __future__ import annotations

import re
import unicodedata

from llm.cascade.errors import InvalidAnswer

ELLIPSIS = "…"

# Reasoning models (DeepSeek-R1, Qwen3 in LM Studio) put their thinking in the content.
_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"[.!?…][\"'»)\]]*(?=\s|$)")


def one_line(text: str) -> str:
    """Drop surrogates and format characters, collapse every run of whitespace to one space."""
    cleaned = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in text
        # A lone surrogate ("\ud800" in the model's JSON) cannot be encoded to UTF-8 and would
        # break the reply downstream; ZWJ holds emoji sequences together.
        if unicodedata.category(ch) not in ("Cf", "Cs") or ch == "\u200d"
    )
    return _WHITESPACE.sub(" ", cleaned).strip()


def last_sentence(text: str) -> str:
    """Text up to its last complete sentence, or "" when there is none."""
    ends = list(_SENTENCE_END.finditer(text))
    return text[: ends[-1].end()] if ends else ""


def last_word(text: str) -> str:
    """Text without its last, possibly cut, word (unchanged when it is a single word)."""
    space = text.rfind(" ")
    return text[:space].rstrip(" ,;:-") if space > 0 else text


def fit(text: str, max_chars: int) -> str:
    """At most `max_chars`: cut after a sentence if one ends in the second half, else at a word + "…"."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    sentence = last_sentence(head)
    if len(sentence) > max_chars // 2:
        return sentence
    cut = text[: max(max_chars - len(ELLIPSIS), 0)]
    space = cut.rfind(" ")
    if space > max_chars // 2:  # a very long "word" (a URL) is cut mid-word rather than emptied
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + ELLIPSIS if max_chars > len(ELLIPSIS) else text[:max_chars]


def clean_answer(text: str, *, finish_reason: str = "", max_chars: int = 500) -> str:
    answer = one_line(_THINK.sub(" ", text))
    if answer and finish_reason == "length":
        # The model was cut off by max_tokens: keep what it finished saying.
        answer = last_sentence(answer) or last_word(answer)
    answer = fit(answer, max_chars)
    if not answer:
        raise InvalidAnswer("EmptyAnswer", "nothing left to say once cleaned")
    return answer
