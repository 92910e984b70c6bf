"""Make any text safe to send to chat.

A model can answer anything: several lines, control characters, lone surrogates, a
leading "/" (a Twitch chat command), thousands of characters. Every reply, the chat
display name in front of it included, goes through here. Platform markup (Discord's
markdown and masked links) is the adapter's business: Twitch shows text as it is.
"""

from __future__ import annotations

import re
import unicodedata

DEFAULT_LIMIT = 500  # Twitch, the console and the web chat
PLATFORM_LIMITS = {"discord": 2000}
ELLIPSIS = "…"

_WHITESPACE = re.compile(r"\s+")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ASCII_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")  # what category Cc holds below U+0080


def limit_for(platform: str) -> int:
    return PLATFORM_LIMITS.get(platform, DEFAULT_LIMIT)


def without_lone_surrogates(text: str) -> str:
    """Rejoin surrogate pairs split into two code points, drop the lone ones.

    A lone surrogate (JSON allows "\\ud800") cannot be encoded to UTF-8: it would make the
    platforms, the Redis layer and `chat --json` fail on the whole reply.
    """
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "ignore")


def _kept(ch: str) -> bool:
    # Format characters hide text (zero-width spaces, bidi overrides, tag characters);
    # ZWJ stays because emoji sequences (👩‍💻) need it.
    return unicodedata.category(ch) != "Cf" or ch == "\u200d"


def one_line(text: str) -> str:
    """Drop lone surrogates and format characters, turn controls and line breaks into single spaces."""
    if text.isascii():
        # No format character below U+0080: only the controls, in one pass of C code.
        return _WHITESPACE.sub(" ", _ASCII_CONTROLS.sub(" ", text)).strip()
    cleaned = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in without_lone_surrogates(text)
        if _kept(ch)
    )
    return _WHITESPACE.sub(" ", cleaned).strip()


def trim(text: str, limit: int) -> str:
    """Cut at a word boundary so the result, ellipsis included, fits in `limit`."""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return text[:limit]
    cut = text[: limit - len(ELLIPSIS)]
    space = cut.rfind(" ")
    if space > limit // 2:  # a very long "word" (a URL) is cut mid-word rather than emptied
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + ELLIPSIS


def fill_variables(phrase: str, *, user: str, channel: str) -> str:
    """`{user}` and `{channel}` in a streamer's phrase. Literal replacement, not str.format:
    a phrase with other braces ("{}" in a joke) must not fail."""
    return phrase.replace("{user}", user).replace("{channel}", channel)


def chat_body(body: str) -> str:
    """`body` as a reply carries it: one line, never starting with "/" or "." (a chat command)."""
    return one_line(body).lstrip("/. ")


def format_reply(user: str, body: str, limit: int) -> str:
    """`@user body` on one line within `limit`, never starting with "/" or "."."""
    name = one_line(user).replace(" ", "_").lstrip("@/.") or "chat"
    prefix = f"@{name} "
    text = chat_body(body)
    room = max(limit - len(prefix), 0)
    return (prefix + trim(text, room)).rstrip()[:limit]
