"""`!serdabot …`: what moderators and the broadcaster change from chat.

`off`/`on` and `llm off`/`llm on` are the channel's settings row (the admin shows the same
switches), saved so every process applies them: the save reloads this process's snapshot
and tells the others (chatbridge/signals.py). `block`/`unblock` edit the channel's blocked
terms, `forget @user` clears a viewer's memory, `status` says what answers right now.
A database that cannot be written gets a reply saying so, never silence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db import DatabaseError

from chatbridge.channel_settings import ChannelConfig, channel_key, settings_cache
from chatbridge.events import ChatEvent
from chatbridge.memory import Memory
from chatbridge.models import ChannelSettings
from chatbridge.moderation import manage
from serdabot.database import reconnecting
from serdabot.outage import describe

log = logging.getLogger("chatbridge.controls")

TEXTS: dict[str, dict[str, str]] = {
    "fr": {
        "off": "Mode avion activé ✈️ Je me tais ici jusqu'à « !serdabot on ».",
        "on": "Rebooté et opérationnel 🤖 Je réponds à nouveau.",
        "llm_off": "Cerveau débranché 🔌 Je réponds avec mes phrases toutes faites.",
        "llm_on": "Cerveau rebranché 🧠 Le modèle reprend la parole.",
        "blocked": "Terme ajouté à la liste noire 🚫 : {term}",
        "already_blocked": "Déjà sur la liste noire, chef 🫡 : {term}",
        "block_refused": "Terme refusé : {reason}",
        "reason_empty": "il est vide",
        "reason_too_long": "trop long",
        "reason_nothing": "il ne contient ni lettre ni chiffre",
        "reason_regex": "expression régulière invalide ou trop coûteuse",
        "unblocked": "Terme retiré de la liste noire ✅ : {term}",
        "not_blocked": "Ce terme n'était pas bloqué ici 🤷 : {term}",
        "forgot": "Mémoire de {user} effacée 🧽",
        "forget_who": "Qui dois-je oublier ? « !serdabot forget @pseudo »",
        "nothing_to_forget": "Rien en mémoire pour {user}, déjà table rase 🫙",
        "db_down": "Impossible d'enregistrer ça : la base de données ne répond pas 🙈 Réessaie bientôt.",
        "help": "Commandes : on, off, llm on|off, status, block <terme>, unblock <terme>, forget @pseudo",
        "status": "Bot {bot} · modèle {llm} · tiers : {tiers} · budget OpenAI : {budget}",
        "on_word": "allumé",
        "off_word": "éteint",
        "unlimited": "illimité",
        "no_openai": "pas de clé",
    },
    "en": {
        "off": "Airplane mode on ✈️ Silent here until “!serdabot on”.",
        "on": "Rebooted and online 🤖 Answering again.",
        "llm_off": "Brain unplugged 🔌 Canned phrases only.",
        "llm_on": "Brain plugged back in 🧠 The model is talking again.",
        "blocked": "Term blocked 🚫: {term}",
        "already_blocked": "Already blocked, boss 🫡: {term}",
        "block_refused": "Term refused: {reason}",
        "reason_empty": "it is empty",
        "reason_too_long": "too long",
        "reason_nothing": "it has no letter or digit",
        "reason_regex": "invalid or too costly regular expression",
        "unblocked": "Term unblocked ✅: {term}",
        "not_blocked": "That term wasn't blocked here 🤷: {term}",
        "forgot": "Memory of {user} wiped 🧽",
        "forget_who": "Who should I forget? “!serdabot forget @name”",
        "nothing_to_forget": "Nothing in memory for {user}, already a clean slate 🫙",
        "db_down": "Can't save that: the database isn't answering 🙈 Try again in a moment.",
        "help": "Commands: on, off, llm on|off, status, block <term>, unblock <term>, forget @name",
        "status": "Bot {bot} · model {llm} · tiers: {tiers} · OpenAI budget: {budget}",
        "on_word": "on",
        "off_word": "off",
        "unlimited": "unlimited",
        "no_openai": "no key",
    },
}


# manage.block's reasons (English constants) in chat's words; any other is a regex problem.
REFUSALS = {
    manage.EMPTY: "reason_empty",
    manage.TOO_LONG: "reason_too_long",
    manage.NOTHING_TO_MATCH: "reason_nothing",
}


def masked(term: str) -> str:
    """A blocked term as the bot may repeat it: the bot saying the slur it was told to block
    would be the very thing blocking prevents (and AutoMod could refuse the confirmation)."""
    term = term.strip()
    shown = term[:2] if term.startswith("/") else term[:1]
    return shown + "•" * min(max(len(term) - len(shown), 1), 12)


def text(language: str, key: str, **values: str) -> str:
    table = TEXTS.get(language, TEXTS["fr"])
    return table[key].format(**values)


@dataclass(frozen=True, slots=True)
class Status:
    """What `!serdabot status` says about the LLM side; the runtime's service fills it."""

    tiers: dict[str, str]  # tier -> state ("up", "down", "cooling", …)
    mode: str  # the LLM mode now: auto, enabled, disabled, paused
    budget_left: str  # "12 requests", "unlimited", "" without an OpenAI tier


StatusSource = Callable[[], Status | None]


def memory_user(name: str) -> str:
    """How memory keys a viewer by name: the name chat types after "@", lowercased."""
    return name.strip().lstrip("@").lower()


def memory_key(event: ChatEvent) -> str:
    """Whose memory a line is. Twitch logins are unique names; Discord display names are
    not (two "Alex" must not share a conversation), so there it is the user's id."""
    if event.platform == "discord" and event.user_id:
        return f"id:{event.user_id}"
    return memory_user(event.user)


def forget_target(event: ChatEvent, argument: str) -> str:
    """The memory key of the viewer `!serdabot forget <argument>` names ("" for nobody)."""
    if event.platform == "discord" and event.mention_ids:
        return f"id:{event.mention_ids[0]}"
    return memory_user(argument.split()[0]) if argument.strip() else ""


class Controls:
    def __init__(self, memory: Memory, status: StatusSource) -> None:
        self.memory = memory
        self.status = status

    async def run(self, event: ChatEvent, words: str, config: ChannelConfig) -> str:
        """The reply body to `!serdabot <words>` from a moderator or the broadcaster."""
        language = config.language
        parts = words.split(maxsplit=1)
        action = parts[0].lower() if parts else ""
        argument = parts[1].strip() if len(parts) > 1 else ""
        try:
            if action in ("on", "off"):
                await self._set(event, bot_enabled=action == "on")
                return text(language, action)
            if action == "llm" and argument.lower() in ("on", "off"):
                await self._set(event, llm_enabled=argument.lower() == "on")
                return text(language, f"llm_{argument.lower()}")
            if action == "status":
                return self._status(language, config)
            if action == "block" and argument:
                done, reason = await sync_to_async(_block)(
                    event.platform, event.channel, argument, event.user
                )
                if done:
                    return text(language, "blocked", term=masked(argument))
                if reason == manage.ALREADY_BLOCKED:
                    return text(language, "already_blocked", term=masked(argument))
                return text(
                    language, "block_refused", reason=text(language, REFUSALS.get(reason, "reason_regex"))
                )
            if action == "unblock" and argument:
                removed = await sync_to_async(_unblock)(event.platform, event.channel, argument)
                return text(language, "unblocked" if removed else "not_blocked", term=masked(argument))
            if action == "forget":
                target = forget_target(event, argument)
                if not target:
                    return text(language, "forget_who")
                user = argument.strip().lstrip("@") or target
                forgotten = await self.memory.forget(event.platform, event.channel, target)
                return text(language, "forgot" if forgotten else "nothing_to_forget", user=user)
        except DatabaseError as exc:
            log.warning(
                "!serdabot %s in %s/%s not saved: %s", action, event.platform, event.channel, describe(exc)
            )
            return text(language, "db_down")
        return text(language, "help")

    async def _set(self, event: ChatEvent, **fields: bool) -> None:
        await sync_to_async(_save_channel)(event.platform, event.channel, fields)
        log.info(
            "%s/%s: %s set by %s from chat",
            event.platform,
            event.channel,
            ", ".join(f"{name}={value}" for name, value in fields.items()),
            event.user,
        )

    def _status(self, language: str, config: ChannelConfig) -> str:
        status = self.status()
        on, off = text(language, "on_word"), text(language, "off_word")
        if status is None:
            tiers, mode, budget = "?", "?", "?"
        else:
            tiers = ", ".join(f"{tier} {state}" for tier, state in status.tiers.items()) or "-"
            mode = status.mode
            budget = status.budget_left or text(language, "no_openai")
        llm = mode if config.llm_enabled else f"{off} ({mode})"
        return text(
            language, "status", bot=on if config.bot_enabled else off, llm=llm, tiers=tiers, budget=budget
        )


def _save_channel(platform: str, channel: str, fields: dict[str, bool]) -> None:
    with reconnecting():
        # A row made here is not joined: a control still on its way after the channel was
        # removed must not bring it back (a Discord channel is answered anyway unless the
        # bot answers only in picked ones).
        row, _ = ChannelSettings.objects.get_or_create(
            platform=platform, channel=channel_key(platform, channel)[1], defaults={"joined": False}
        )
        for name, value in fields.items():
            setattr(row, name, value)
        # save(), not update(): its signal reloads every process's snapshot after the commit.
        row.save()
    # This process answers the next line with the new setting even before the commit hook runs.
    settings_cache.load()


def _block(platform: str, channel: str, term: str, by: str) -> tuple[bool, str]:
    with reconnecting():
        return manage.block(platform, channel_key(platform, channel)[1], term, by)


def _unblock(platform: str, channel: str, term: str) -> bool:
    with reconnecting():
        return manage.unblock(platform, channel_key(platform, channel)[1], term)
