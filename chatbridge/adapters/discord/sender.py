"""Sending one reply through discord.py, errors translated for the outbox."""

from __future__ import annotations

import re

import discord

from chatbridge.adapters.outbound import Outgoing, RateLimited, Rejected
from chatbridge.sanitize import trim

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


class DiscordSender:
    def __init__(self, client: discord.Client) -> None:
        self.client = client

    async def __call__(self, message: Outgoing) -> None:
        channel_id = int(message.channel_id)
        channel = self.client.get_partial_messageable(channel_id)
        reference = (
            discord.MessageReference(
                message_id=int(message.reply_to), channel_id=channel_id, fail_if_not_exists=False
            )
            if message.reply_to
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
            # discord.py has already waited out and retried Discord's own 429s.
            if exc.status == 429:
                raise RateLimited() from None
            if 400 <= exc.status < 500:
                raise Rejected(f"HTTP {exc.status}: {exc.text or 'no detail'}") from None
            raise
