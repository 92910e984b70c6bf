"""A discord.py `Message` or slash-command `Interaction` as the project's platform-neutral `ChatEvent`."""

from __future__ import annotations

from typing import Any

import discord

from chatbridge.adapters.discord.channels import settings_channel
from chatbridge.events import ChatEvent
from chatbridge.sanitize import without_lone_surrogates


def is_moderator(author: discord.User | discord.Member) -> bool:
    if not isinstance(author, discord.Member):
        return False
    # An interaction carries the member's permissions in its channel, as Discord computed
    # them; a message only has the roles, read against the cached server.
    perms = author.resolved_permissions or author.guild_permissions
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
        mention_ids=tuple(str(user.id) for user in message.mentions if user.id != bot_id),
        channel_name=channel_name(message.channel),
    )


def channel_name(channel: Any) -> str:
    """`{channel}` in a phrase: the channel's name ("général"), not its id; a DM has none."""
    name = getattr(channel, "name", None)
    return without_lone_surrogates(name) if isinstance(name, str) else ""


def interaction_channel(interaction: discord.Interaction[Any]) -> str:
    """The settings key of the channel a slash command was used in (a thread: its parent's)."""
    channel = interaction.channel
    if channel is not None:
        return settings_channel(channel)  # type: ignore[arg-type]  # a category or forum cannot run one
    return str(interaction.channel_id)


def slash_event(interaction: discord.Interaction[Any], command: str, text: str) -> ChatEvent:
    """`/ask question:…` as the line `!ask …`: the relay and the handler read it as they read
    a chat message, cooldowns, enabled commands and moderation included."""
    user = interaction.user
    guild = interaction.guild
    return ChatEvent(
        platform="discord",
        channel=interaction_channel(interaction),
        user=without_lone_surrogates(user.display_name),
        text=without_lone_surrogates(f"!{command} {text}".strip()),
        # The reply to this event goes to the interaction (see sender.py), found by this id.
        message_id=str(interaction.id),
        is_moderator=is_moderator(user),
        is_broadcaster=guild is not None and user.id == guild.owner_id,
        user_id=str(user.id),
        channel_id=str(interaction.channel_id),
        channel_name=channel_name(interaction.channel),
    )
