"""Intents answered as chat commands: `!<slug>` and its aliases, read from the cache.

The mapping is built once per cache snapshot, so a message costs a dict lookup, and an
edit in the admin is live as soon as the cache reloads.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from fallbacks import cache
from fallbacks.models import Intent, Permission

log = logging.getLogger("fallbacks.commands")

# The bot's own commands. They always win: no intent or alias can take them over. "mention"
# is no `!` command but the name mentions are counted under (cooldowns, enabled commands).
BUILTIN_COMMANDS = frozenset({"ask", "chill", "forget", "serdabot", "mention"})
# The built-in commands whose replies are an intent's phrases: that intent is meant to be named so.
BUILTIN_WITH_INTENT = frozenset({"ask", "chill"})
# What chat can type after "!" (chatbridge.commands reads `[\w-]+`): letters, digits, _ and -.
NAME = re.compile(r"[\w-]+")


@dataclass(frozen=True, slots=True)
class CustomCommand:
    slug: str  # the intent: its phrases, its cooldown key
    ask_model: bool
    prompt: str  # the system prompt when ask_model; "" for the channel's !ask prompt
    permission: str  # a fallbacks.models.Permission value
    user_cooldown: int | None  # seconds; None for the channel's
    channel_cooldown: int | None


def parse_aliases(text: str) -> tuple[list[str], list[str]]:
    """The valid names (lowercased, in order, once each) and the invalid entries of a comma list."""
    names: list[str] = []
    invalid: list[str] = []
    for entry in text.split(","):
        name = entry.strip().lower()
        if not name:
            continue
        if not NAME.fullmatch(name):
            invalid.append(entry.strip())
        elif name not in names:
            names.append(name)
    return names, invalid


def aliases_of(text: str) -> list[str]:
    return parse_aliases(text)[0]


_built: tuple[cache.Snapshot, Mapping[str, CustomCommand]] | None = None
_logged: set[tuple[str, str, str]] = set()  # (name, kept slug, dropped slug) already said


def custom_commands() -> Mapping[str, CustomCommand]:
    """Command name or alias, lowercased, → command; enabled intents marked as commands only."""
    global _built
    snapshot = cache.snapshot()
    built = _built
    if built is not None and built[0] is snapshot:
        return built[1]
    # Two threads may both build for a new snapshot: same result, the last assignment wins.
    mapping = MappingProxyType(_build(snapshot.intents))
    _built = (snapshot, mapping)
    return mapping


def _build(intents: Iterable[cache.IntentConfig]) -> dict[str, CustomCommand]:
    # By slug, so every tie goes to the lower slug whatever the database order.
    ordered = sorted(
        (intent for intent in intents if intent.command and intent.slug.lower() not in BUILTIN_COMMANDS),
        key=lambda intent: intent.slug,
    )
    commands = [
        (
            intent,
            CustomCommand(
                slug=intent.slug,
                ask_model=intent.ask_model,
                prompt=intent.prompt,
                permission=intent.permission,
                user_cooldown=intent.user_cooldown,
                channel_cooldown=intent.channel_cooldown,
            ),
        )
        for intent in ordered
    ]
    names: dict[str, CustomCommand] = {}
    # Slugs first: an intent's own name beats another intent's alias.
    for intent, command in commands:
        _claim(names, intent.slug.lower(), command)
    for intent, command in commands:
        for alias in aliases_of(intent.aliases):
            if alias not in BUILTIN_COMMANDS:
                _claim(names, alias, command)
    return names


def _claim(names: dict[str, CustomCommand], name: str, command: CustomCommand) -> None:
    owner = names.setdefault(name, command)
    if owner is not command and owner.slug != command.slug:
        _log_once(name, owner.slug, command.slug)


def _log_once(name: str, kept: str, dropped: str) -> None:
    if (name, kept, dropped) in _logged:
        return
    _logged.add((name, kept, dropped))
    log.warning("command !%s is claimed by intents %r and %r; %r answers it", name, kept, dropped, kept)


def collisions(slug: str, aliases: Iterable[str]) -> list[str]:
    """What the admin warns about when an intent is saved as a command: one sentence per clash.

    Reads the database (the admin runs sync, and the cache reloads only after the commit).
    """
    own = slug.strip()
    slug = own.lower()
    names = [alias for alias in dict.fromkeys(a.strip().lower() for a in aliases) if alias and alias != slug]
    found: list[str] = []
    if slug in BUILTIN_COMMANDS:
        if slug not in BUILTIN_WITH_INTENT:
            found.append(f"!{slug} is a built-in command: it answers, this intent never does as a command.")
        if names:
            found.append(f"The aliases of !{slug} are not used: a built-in command keeps its own name.")
        return found
    others = list(
        Intent.objects.filter(enabled=True, command=True).exclude(slug__iexact=slug).order_by("slug")
    )
    # As custom_commands() decides: slugs beat aliases, then the lower slug wins.
    slugs = {other.slug.lower(): other.slug for other in others}
    claimed: dict[str, str] = {}
    for other in others:
        for alias in aliases_of(other.aliases):
            claimed.setdefault(alias, other.slug)
    if slug in claimed:
        found.append(f"!{slug} is also an alias of intent “{claimed[slug]}”: this intent answers it.")
    for alias in names:
        if alias in BUILTIN_COMMANDS:
            found.append(f"Alias !{alias} is a built-in command: the built-in answers, not this intent.")
        elif alias in slugs:
            found.append(f"Alias !{alias} is intent “{slugs[alias]}”'s command: that intent answers it.")
        elif alias in claimed:
            winner = min(claimed[alias], own)  # the lower slug, as sorted there
            found.append(
                f"Alias !{alias} is also an alias of intent “{claimed[alias]}”: “{winner}” answers it."
            )
    return found


def permitted(permission: str, *, moderator: bool, broadcaster: bool, vip: bool, subscriber: bool) -> bool:
    """Whether a chatter with these badges may use a command restricted to `permission`."""
    staff = moderator or broadcaster
    if permission == Permission.EVERYONE:
        return True
    if permission == Permission.SUBSCRIBERS:
        return subscriber or vip or staff
    if permission == Permission.VIPS:
        return vip or staff
    # Moderators, or a value this code does not know: the safe side.
    return staff
