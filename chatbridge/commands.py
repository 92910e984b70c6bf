"""What a chat line asks of the bot, decided from its text alone (no I/O).

Shared by the handler (which answers) and the adapters (which apply cooldowns
before anything crosses the channel layer). Who may use a command in a channel is
`chatbridge.gate`'s business.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from fallbacks.commands import CustomCommand

ASK = "ask"
CHILL = "chill"
MENTION = "mention"
FORGET = "forget"  # a viewer clears their own conversation memory
CONTROL = "serdabot"  # moderator and broadcaster controls: `!serdabot off`…
# Answered by the model (or its phrases), with the conversation memory.
MODEL_COMMANDS = frozenset({ASK, CHILL, MENTION})
BUILTINS = frozenset({ASK, CHILL, FORGET, CONTROL})


@dataclass(frozen=True, slots=True)
class Command:
    # What cooldowns and enabled-commands key on: "ask", "chill", "mention", "forget",
    # "serdabot", or a custom command's intent slug.
    name: str
    intent: str  # fallback/LLM intent: "ask", "chill", or the custom intent's slug
    prompt: str  # what the model is asked (the question, the whole line for a mention, a control's words)
    custom: CustomCommand | None = None  # set for a custom command (an intent of the admin)

    @property
    def control(self) -> bool:
        return self.name == CONTROL


_COMMAND = re.compile(r"^!(?P<name>[\w-]+)(?:\s+(?P<rest>.*))?$", re.DOTALL)


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


def parse(
    text: str,
    names: Iterable[str],
    *,
    mentions_bot: bool = False,
    custom: Mapping[str, CustomCommand] | None = None,
) -> Command | None:
    """Return the command a chat line carries, or None for ordinary chat."""
    line = text.strip()
    if line[:1] == "!" and (match := _COMMAND.match(line)):
        name = match.group("name").lower()
        rest = (match.group("rest") or "").strip()
        if name == ASK:
            return Command(ASK, ASK, rest)
        if name == CHILL:
            return Command(CHILL, CHILL, rest or line)
        if name == FORGET:
            return Command(FORGET, FORGET, "")
        if name == CONTROL:
            return Command(CONTROL, CONTROL, rest)
        spec = (custom or {}).get(name)
        if spec is not None:
            return Command(spec.slug, spec.slug, rest, custom=spec)
    if mentions_bot or mentions(line, names):
        return Command(MENTION, CHILL, line)
    return None
