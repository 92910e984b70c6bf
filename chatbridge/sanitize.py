"""Make any text safe to send to chat.

A model can answer anything: several lines, control characters, a leading "/"
(a Twitch chat command), thousands of characters. Every reply goes through here.
"""

from __future__ import annotations

import re
import unicodedata

DEFAULT_LIMIT = 500  # Twitch, the console and the web chat
PLATFORM_LIMITS = {"discord": 2000}
ELLIPSIS = "…"

_WHITESPACE = re.compile(r"\s+")


def limit_for(platform: str) -> int:
    return PLATFORM_LIMITS.get(platform, DEFAULT_LIMIT)


def one_line(text: str) -> str:
    """Drop control and format characters, collapse all whitespace to single spaces."""
    cleaned = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in text
        if unicodedata.category(ch) != "Cf" or ch == "\u200d"  # keep ZWJ: emoji sequences need it
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


def format_reply(user: str, body: str, limit: int) -> str:
    """`@user body` on one line within `limit`, never starting with "/" or "."."""
    name = one_line(user).replace(" ", "_").lstrip("@/.") or "chat"
    prefix = f"@{name} "
    text = one_line(body).lstrip("/. ")
    room = max(limit - len(prefix), 0)
    return (prefix + trim(text, room)).rstrip()[:limit]
