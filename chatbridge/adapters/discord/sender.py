"""Sending one reply through discord.py, errors translated for the outbox.

A reply to a slash command goes to its interaction, not to the channel: the interaction
was acknowledged with "thinking…" (or refused with a private line) when it came in, and
its answer replaces the "thinking…". The interactions waiting for a reply are kept
here, keyed by interaction id (the event's message id), for as long as Discord lets a
bot answer one.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NoReturn

import aiohttp
import discord

from chatbridge.adapters.outbound import Outgoing, RateLimited, Rejected
from chatbridge.sanitize import trim

log = logging.getLogger("chatbridge.discord")

DISCORD_LIMIT = 2000
# A model's text must never ping @everyone, a role or a user, nor the person replied to.
NO_MENTIONS = discord.AllowedMentions.none()

# `[text](url)`, `[text](<url>)` and `[text](url "title")` as Discord renders them (web
# links only), with one level of brackets in the text and of parentheses in the URL
# (Wikipedia's `..._(langage)`).
_MASKED_LINK = re.compile(
    r"\[((?:[^\[\]]|\[[^\[\]]*\])*)\]"
    r"\(\s*<?(https?://(?:[^()\s<>]|\([^()\s<>]*\))+)>?(?:\s+\"[^\"]*\")?\s*\)",
    re.IGNORECASE,
)


def _unmask(match: re.Match[str]) -> str:
    text, url = match.group(1).strip(), match.group(2)
    return url if not text or text == url else f"{text} ({url})"


def unmasked_links(text: str) -> str:
    """`[text](url)` as `text (url)`.

    A masked link shows words and hides where it leads: the classic phishing shape, and
    one a model can be talked into writing. Written out, the reader sees the address
    before clicking, and the sentence still reads as one.
    """
    while True:  # a link inside a link's text comes out on the next pass
        unmasked = _MASKED_LINK.sub(_unmask, text)
        if unmasked == text:
            return text
        text = unmasked


def discord_text(text: str) -> str:
    """The reply as Discord should show it: no masked link, no markdown, within the limit.

    The whole line is escaped, so the chat display name in front of the reply is too
    (`@*Star*` must not turn the reply bold). URLs are left as they are: an escaped
    underscore would break the address.
    """
    text = unmasked_links(text)
    escaped = discord.utils.escape_markdown(trim(text, DISCORD_LIMIT))
    if len(escaped) <= DISCORD_LIMIT:
        return escaped
    # Escaping lengthens the text: cut the plain text (the longest cut whose escaped form
    # fits), rather than the escaped one, which could end inside an escape (a lone backslash).
    fits, over = 0, DISCORD_LIMIT
    while over - fits > 1:
        middle = (fits + over) // 2
        if len(discord.utils.escape_markdown(trim(text, middle))) <= DISCORD_LIMIT:
            fits = middle
        else:
            over = middle
    return discord.utils.escape_markdown(trim(text, fits))


# An interaction's token lets a bot answer it for 15 minutes.
INTERACTION_LIFE = 15 * 60.0  # seconds
# Slash commands waiting for their reply. Past this the oldest is forgotten: its reply
# goes to the channel as an ordinary message.
MAX_INTERACTIONS = 2_000
# How long a reply waits for its interaction's acknowledgement (a request under way)
# before it goes to the channel instead.
ACK_WAIT = 10.0  # seconds
# What the acknowledgement and the followup can fail with besides Discord's own answers.
NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


class Ack(enum.Enum):
    WAITING = "waiting"  # not acknowledged yet
    DEFERRED = "deferred"  # "thinking…" shows: the reply replaces it
    REFUSED = "refused"  # a private line said why no answer comes: a cooldown notice is not sent
    LOST = "lost"  # Discord did not take the acknowledgement: the reply goes to the channel


class SlashReply:
    """One slash command, from its acknowledgement to its reply."""

    def __init__(self, interaction: discord.Interaction[Any]) -> None:
        self.interaction = interaction
        self.ack = Ack.WAITING
        self.acknowledged = asyncio.Event()

    async def defer(self) -> None:
        """Show "thinking…": the reply comes later (Discord wants a response within 3 s)."""
        try:
            await self.interaction.response.defer(thinking=True)
        except (discord.DiscordException, *NETWORK_ERRORS) as exc:
            self.ack = Ack.LOST
            log.info("Discord: slash command %s not acknowledged (%s)", self.interaction.id, _why(exc))
        else:
            self.ack = Ack.DEFERRED
        finally:
            self.acknowledged.set()

    async def refuse(self, line: str) -> None:
        """Say why no answer comes. Private, unless "thinking…" already shows to everyone
        (a decision that came late): then the line replaces it."""
        try:
            if self.ack is Ack.DEFERRED:
                await self.interaction.followup.send(line, allowed_mentions=NO_MENTIONS, wait=True)
            else:
                await self.interaction.response.send_message(
                    line, ephemeral=True, allowed_mentions=NO_MENTIONS
                )
        except (discord.DiscordException, *NETWORK_ERRORS) as exc:
            log.info("Discord: slash command %s not answered (%s)", self.interaction.id, _why(exc))
        finally:
            self.ack = Ack.REFUSED
            self.acknowledged.set()


def _why(exc: BaseException) -> str:
    if isinstance(exc, discord.HTTPException):
        return f"HTTP {exc.status}: {exc.text or 'no detail'}"
    return type(exc).__name__


class Interactions:
    """The slash commands waiting for their reply, by interaction id: bounded in number,
    each forgotten once Discord no longer takes an answer to it."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        keep_for: float = INTERACTION_LIFE,
        at_most: int = MAX_INTERACTIONS,
    ) -> None:
        self.clock = clock
        self.keep_for = keep_for
        self.at_most = at_most
        self._waiting: OrderedDict[str, tuple[float, SlashReply]] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._waiting)

    def expect(self, interaction: discord.Interaction[Any]) -> SlashReply | None:
        """Note a new slash command; None when its id is already waiting (delivered twice)."""
        self._expire()
        key = str(interaction.id)
        if key in self._waiting:
            return None
        slash = SlashReply(interaction)
        self._waiting[key] = (self.clock(), slash)
        while len(self._waiting) > self.at_most:
            self._waiting.popitem(last=False)
        return slash

    def get(self, key: str) -> SlashReply | None:
        self._expire()
        entry = self._waiting.get(key)
        return None if entry is None else entry[1]

    def forget(self, key: str) -> None:
        self._waiting.pop(key, None)

    def _expire(self) -> None:
        now = self.clock()
        while self._waiting and next(iter(self._waiting.values()))[0] + self.keep_for <= now:
            self._waiting.popitem(last=False)


class DiscordSender:
    def __init__(self, client: discord.Client, interactions: Interactions | None = None) -> None:
        self.client = client
        self.interactions = interactions if interactions is not None else Interactions(time.monotonic)

    async def __call__(self, message: Outgoing) -> None:
        slash = self.interactions.get(message.reply_to) if message.reply_to else None
        if slash is not None and await self._to_interaction(slash, message):
            return
        # A slash command's reply that cannot go to its interaction replies to no message.
        await self._to_channel(message, reply=slash is None)

    async def _to_interaction(self, slash: SlashReply, message: Outgoing) -> bool:
        """Answer the slash command; False when the reply must go to the channel instead."""
        try:
            async with asyncio.timeout(ACK_WAIT):
                await slash.acknowledged.wait()
        except TimeoutError:
            slash.ack = Ack.LOST
        if slash.ack is Ack.LOST:
            self.interactions.forget(message.reply_to)
            return False
        if slash.ack is Ack.REFUSED and message.ticket is None:
            # The relay's cooldown notice: the user has had the private line already.
            self.interactions.forget(message.reply_to)
            return True
        try:
            # The first followup after "thinking…" replaces it (Discord's rule); unlike an
            # edit of the original response, it can carry the no-preview flag.
            await slash.interaction.followup.send(
                discord_text(message.text),
                allowed_mentions=NO_MENTIONS,
                suppress_embeds=True,
                wait=True,
            )
        except discord.NotFound:
            # Too late for the token, or the "thinking…" was deleted: say it in the channel.
            self.interactions.forget(message.reply_to)
            return False
        except discord.HTTPException as exc:
            _raise_for(exc)
        self.interactions.forget(message.reply_to)
        return True

    async def _to_channel(self, message: Outgoing, *, reply: bool) -> None:
        channel_id = int(message.channel_id)
        channel = self.client.get_partial_messageable(channel_id)
        reference = (
            discord.MessageReference(
                message_id=int(message.reply_to), channel_id=channel_id, fail_if_not_exists=False
            )
            if message.reply_to and reply
            else None
        )
        try:
            await channel.send(
                discord_text(message.text),
                reference=reference,  # type: ignore[arg-type]
                allowed_mentions=NO_MENTIONS,
                # No link previews: a model's link must not unfurl a stranger's page in chat.
                suppress_embeds=True,
            )
        except discord.HTTPException as exc:
            _raise_for(exc)


def _raise_for(exc: discord.HTTPException) -> NoReturn:
    # discord.py has already waited out and retried Discord's own 429s.
    if exc.status == 429:
        raise RateLimited() from None
    if 400 <= exc.status < 500:
        raise Rejected(f"HTTP {exc.status}: {exc.text or 'no detail'}") from None
    raise exc
