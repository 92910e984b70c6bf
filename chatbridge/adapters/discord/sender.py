"""Sending one reply through discord.py, errors translated for the outbox."""

from __future__ import annotations

import discord

from chatbridge.adapters.outbound import Outgoing, RateLimited, Rejected
from chatbridge.sanitize import trim

DISCORD_LIMIT = 2000
# A model's text must never ping @everyone, a role or a user, nor the person replied to.
NO_MENTIONS = discord.AllowedMentions.none()


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
                trim(message.text, DISCORD_LIMIT),
                reference=reference,  # type: ignore[arg-type]
                allowed_mentions=NO_MENTIONS,
            )
        except discord.HTTPException as exc:
            # discord.py has already waited out and retried Discord's own 429s.
            if exc.status == 429:
                raise RateLimited() from None
            if 400 <= exc.status < 500:
                raise Rejected(f"HTTP {exc.status}: {exc.text or 'no detail'}") from None
            raise
