"""What a chat line asks of the bot, decided from its text alone (no I/O).

Shared by the handler (which answers) and the adapters (which apply cooldowns
before anything crosses the channel layer).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

ASK = "ask"
CHILL = "chill"
MENTION = "mention"


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # "ask", "chill" or "mention": what cooldowns and enabled-commands key on
    intent: str  # fallback/LLM intent: "ask" or "chill"
    prompt: str  # what the model is asked (the question, or the whole line for a mention)


_ASK = re.compile(r"^!ask(?:\s+(?P<q>.*))?$", re.IGNORECASE | re.DOTALL)
_CHILL = re.compile(r"^!chill(?:\s+(?P<q>.*))?$", re.IGNORECASE | re.DOTALL)


@lru_cache(maxsize=256)
def _mention_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True) if n)
    # The name as a whole word, optionally "@"-prefixed; punctuation around it is fine
    # ("serdabot?", "(@SerdaBot)"), but "serdabots" or "notserdabot" are other words.
    return re.compile(rf"(?<![\w@])@?(?:{alternatives})(?!\w)", re.IGNORECASE)


def mentions(text: str, names: Iterable[str]) -> bool:
    key = tuple(sorted({n.strip().lstrip("@").lower() for n in names if n.strip().lstrip("@")}))
    if not key:
        return False
    return _mention_pattern(key).search(text) is not None


def parse(text: str, names: Iterable[str], *, mentions_bot: bool = False) -> Command | None:
    """Return the command a chat line carries, or None for ordinary chat."""
    line = text.strip()
    if line[:1] == "!":
        if match := _ASK.match(line):
            return Command(ASK, ASK, (match.group("q") or "").strip())
        if match := _CHILL.match(line):
            return Command(CHILL, CHILL, (match.group("q") or "").strip() or line)
    if mentions_bot or mentions(line, names):
        return Command(MENTION, CHILL, line)
    return None
