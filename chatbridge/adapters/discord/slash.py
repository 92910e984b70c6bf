"""/ask and /chill as discord.py application commands, and what becomes of each use.

A slash command is one chat event ("!ask <question>") through the same relay as a chat
message: enabled commands, cooldowns, the handler and moderation all apply, and it
needs no Message Content intent. Discord wants a response within 3 s, so each use is
acknowledged at once: "thinking…" when an answer is on its way (the answer replaces it,
see sender.py), or a short line only the user sees when none will come.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from chatbridge.adapters.discord.sender import NETWORK_ERRORS, NO_MENTIONS, SlashReply
from chatbridge.commands import ASK, CHILL
from serdabot.outage import describe

if TYPE_CHECKING:
    from chatbridge.adapters.relay import Relay
    from chatbridge.events import ChatEvent

log = logging.getLogger("chatbridge.discord")

# What a chat message could carry: a question longer than that is not a chat question.
TEXT_MAX = 2000
# The relay decides at once; only handing the event to the workers can wait (a slow
# channel layer). Past this the command is acknowledged with "thinking…" anyway, well
# within Discord's 3 s.
ACK_WITHIN = 1.0  # seconds
# One command sync (a request, and discord.py's waits on a 429) holds the connection to
# the gateway back at most this long.
SYNC_WITHIN = 20.0  # seconds

# Why no answer comes.
COOLDOWN = "cooldown"
DISABLED = "disabled"  # the command is off in this channel
PAUSED = "paused"  # `!serdabot off`
ELSEWHERE = "elsewhere"  # a channel (or DMs) the bot does not answer in
UNAVAILABLE = "unavailable"  # shutting down, delivered twice, or anything unexpected
LINES = {
    "fr": {
        COOLDOWN: "⏳ Cooldown en cours, réessaie dans un instant.",
        DISABLED: "Commande désactivée ici.",
        PAUSED: "💤 Je suis en pause dans ce salon.",
        ELSEWHERE: "Je ne réponds pas dans ce salon.",
        UNAVAILABLE: "🔌 Je ne peux pas répondre pour l'instant, réessaie dans un instant.",
    },
    "en": {
        COOLDOWN: "⏳ Cooling down, try again in a moment.",
        DISABLED: "This command is off here.",
        PAUSED: "💤 I'm taking a break in this channel.",
        ELSEWHERE: "I don't answer in this channel.",
        UNAVAILABLE: "🔌 I can't answer right now, try again in a moment.",
    },
}


def line(reason: str, language: str = "fr") -> str:
    return LINES.get(language, LINES["fr"])[reason]


Run = Callable[[discord.Interaction[Any], str, str], Awaitable[None]]


def slash_commands(run: Run, *, guild_only: bool) -> list[app_commands.Command[Any, ..., None]]:
    """/ask and /chill, each handing its interaction, name and text to `run`."""

    @app_commands.command(name=ASK, description="Pose une question au bot.")
    @app_commands.describe(question="Ta question")
    async def ask(
        interaction: discord.Interaction[Any], question: app_commands.Range[str, 1, TEXT_MAX]
    ) -> None:
        await run(interaction, ASK, question)

    @app_commands.command(name=CHILL, description="Un mot détendu du bot.")
    @app_commands.describe(message="De quoi parler (facultatif)")
    async def chill(
        interaction: discord.Interaction[Any], message: app_commands.Range[str, 1, TEXT_MAX] | None = None
    ) -> None:
        await run(interaction, CHILL, message or "")

    commands: list[app_commands.Command[Any, ..., None]] = [ask, chill]
    for command in commands:
        # Without DISCORD_ALLOW_DMS a DM would only get a refusal: do not offer them there.
        command.guild_only = guild_only
    return commands


class SlashTree(app_commands.CommandTree[Any]):
    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        # A command Discord still lists but this version no longer has, or an option out of
        # bounds: the user gets a line rather than "the application did not respond".
        log.info("Discord: slash command %s refused: %s", interaction.id, error)
        if not interaction.response.is_done():
            try:
                await interaction.response.send_message(
                    line(UNAVAILABLE), ephemeral=True, allowed_mentions=NO_MENTIONS
                )
            except (discord.DiscordException, *NETWORK_ERRORS):
                pass


class CommandSync:
    """Pushes the commands to Discord at start: to each server of DISCORD_GUILDS (they show
    there at once), or globally without any. Once per process, unless it failed."""

    def __init__(self, guilds: Sequence[int]) -> None:
        self.guilds = tuple(guilds)
        self.done = False
        self._said_global = False

    async def sync(self, tree: app_commands.CommandTree[Any]) -> None:
        if self.done:
            return
        targets: list[discord.Object | None] = [discord.Object(id=g) for g in self.guilds] or [None]
        if not self.guilds and not self._said_global:
            self._said_global = True
            log.info(
                "Discord: no DISCORD_GUILDS, slash commands synced globally "
                "(set DISCORD_GUILDS to the server ids to have them there at once)"
            )
        done = True
        for guild in targets:
            where = "globally" if guild is None else f"to server {guild.id}"
            if guild is not None:
                tree.copy_global_to(guild=guild)
            try:
                async with asyncio.timeout(SYNC_WITHIN):
                    await tree.sync(guild=guild)
            except discord.Forbidden:
                done = False
                log.warning(
                    "Discord: slash commands not synced %s: invite the bot there with the "
                    "applications.commands scope (see 'Connecting to Discord' in the README)",
                    where,
                )
            except (discord.DiscordException, *NETWORK_ERRORS) as exc:
                done = False
                log.warning("Discord: slash commands not synced %s (%s)", where, describe(exc))
            else:
                log.info("Discord: slash commands /ask and /chill synced %s", where)
        self.done = done


class Outcome(enum.Enum):
    ANSWERING = "answering"  # a reply is on its way
    COOLDOWN = "cooldown"
    REFUSED = "refused"  # not answered here (disabled, paused, delivered twice, shutting down)


async def offer(relay: Relay, event: ChatEvent) -> Outcome:
    # The relay decides without pausing: when it refuses, nothing else runs between these
    # reads and its answer, so the counters that moved are this event's.
    hits, guarded = relay.status.cooldown_hits, relay.guarded
    if await relay.incoming(event) or relay.guarded != guarded:
        return Outcome.ANSWERING  # with the workers, or answered by the relay itself (layer down)
    return Outcome.COOLDOWN if relay.status.cooldown_hits != hits else Outcome.REFUSED


def refusal(relay: Relay, event: ChatEvent, outcome: Outcome) -> str:
    config = relay.settings.get(relay.platform, event.channel)
    if outcome is Outcome.COOLDOWN:
        reason = COOLDOWN
    elif relay.decide(event, config) is not None:
        reason = UNAVAILABLE
    else:
        reason = DISABLED if config.bot_enabled else PAUSED
    return line(reason, config.language)


async def answer(slash: SlashReply, relay: Relay, event: ChatEvent) -> None:
    """Hand the slash command to the relay and acknowledge it as its fate requires."""
    taking = asyncio.ensure_future(offer(relay, event))
    try:
        done, _ = await asyncio.wait({taking}, timeout=ACK_WITHIN)
        if not done:
            # Waiting on the channel layer: only a granted command does, so a reply will come.
            await slash.defer()
        outcome = await taking
    except asyncio.CancelledError:
        taking.cancel()
        raise
    if outcome is Outcome.ANSWERING:
        if not slash.acknowledged.is_set():
            await slash.defer()
        return
    await slash.refuse(refusal(relay, event, outcome))
