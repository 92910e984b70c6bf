"""A twitchio `ChatMessage` as the project's platform-neutral `ChatEvent`."""

from __future__ import annotations

import twitchio

from chatbridge.events import ChatEvent
from chatbridge.sanitize import without_lone_surrogates


def mentions_user(message: twitchio.ChatMessage, user_id: str) -> bool:
    # Twitch marks "@name" as a mention fragment carrying the user's id: renames and
    # display names in other scripts still match.
    return any(
        f.type == "mention" and f.mention is not None and f.mention.id == user_id for f in message.fragments
    )


def display_name(chatter: twitchio.Chatter) -> str:
    # A display name in another script (e.g. 日本語) is not what chat types after "@".
    name = chatter.display_name or ""
    login = chatter.name or ""
    return name if name.lower() == login.lower() and name else login or name or "viewer"


def chat_event(message: twitchio.ChatMessage, bot_id: str) -> ChatEvent:
    chatter = message.chatter
    broadcaster = message.broadcaster
    return ChatEvent(
        platform="twitch",
        channel=(broadcaster.name or broadcaster.id).lower(),
        # EventSub's JSON may carry a lone surrogate ("\ud800"): the event crosses the channel
        # layer (msgpack on Redis), which cannot encode one.
        user=without_lone_surrogates(display_name(chatter)),
        text=without_lone_surrogates(message.text),
        message_id=message.id,
        is_moderator=chatter.moderator,
        is_broadcaster=chatter.broadcaster or chatter.id == broadcaster.id,
        mentions_bot=mentions_user(message, bot_id),
        user_id=chatter.id,
        channel_id=broadcaster.id,
    )


def from_other_channel(message: twitchio.ChatMessage) -> bool:
    """A shared-chat message that was typed in another channel."""
    source = message.source_broadcaster
    return source is not None and source.id != message.broadcaster.id
