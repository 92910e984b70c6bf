"""A discord.py `Message` as the project's platform-neutral `ChatEvent`."""

from __future__ import annotations

import discord

from chatbridge.adapters.discord.channels import settings_channel
from chatbridge.events import ChatEvent
from chatbridge.sanitize import without_lone_surrogates


def is_moderator(author: discord.User | discord.Member) -> bool:
    if not isinstance(author, discord.Member):
        return False
    perms = author.guild_permissions
    return perms.administrator or perms.manage_messages or perms.moderate_members


def chat_event(message: discord.Message, bot_id: int) -> ChatEvent:
    guild = message.guild
    author = message.author
    return ChatEvent(
        platform="discord",
        # A thread's settings, cooldowns and reply queue are its parent channel's; the reply
        # itself goes to the thread (channel_id).
        channel=settings_channel(message.channel),
        # The gateway's JSON may carry a lone surrogate ("\ud800"): the event crosses the
        # channel layer (msgpack on Redis), which cannot encode one.
        user=without_lone_surrogates(author.display_name),
        # "<@1000> salut" reads as "@SerdaBot salut" for the handler and the model.
        text=without_lone_surrogates(message.clean_content),
        message_id=str(message.id),
        is_moderator=is_moderator(author),
        is_broadcaster=guild is not None and author.id == guild.owner_id,
        mentions_bot=any(user.id == bot_id for user in message.mentions),
        user_id=str(author.id),
        channel_id=str(message.channel.id),
    )
