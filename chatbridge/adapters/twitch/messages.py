"""A twitchio `ChatMessage` as the project's platform-neutral `ChatEvent`.

Shared Chat: in a shared session, one message typed in channel A is delivered once
per channel of the session, each copy with its own id and the source's id, channel
and badges (`source_message_id`, `source_broadcaster_user_id`, `source_badges`). Every
copy becomes the same event: keyed on the source message id (so the relay and the
workers keep one), answered in the source channel when the bot reads it (with the
chatter's badges there), else in the channel the copy arrived in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import twitchio

from chatbridge.adapters.twitch.streams import UNKNOWN, StreamInfo, StreamInfos
from chatbridge.events import ChatEvent
from chatbridge.sanitize import without_lone_surrogates

MODERATOR_BADGES = frozenset({"moderator", "lead_moderator", "broadcaster"})
# A founder's badge replaces the subscriber badge while they are subscribed.
SUBSCRIBER_BADGES = frozenset({"subscriber", "founder"})


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


def source_channel(message: twitchio.ChatMessage) -> twitchio.PartialUser | None:
    """The channel a shared-chat copy was typed in; None when typed where it arrived.

    Twitch documents the source fields as null on the source channel's own copy; they may
    also name the receiving channel itself, which is the same thing.
    """
    source = message.source_broadcaster
    if source is None or not source.id or source.id == message.broadcaster.id:
        return None
    return source


def source_message_id(message: twitchio.ChatMessage) -> str:
    """The id every copy of a shared-chat message has in common (its id in the source channel)."""
    return message.source_id or message.id


def badge_names(badges: Iterable[twitchio.ChatMessageBadge]) -> frozenset[str]:
    return frozenset((b.set_id or "").replace("-", "_") for b in badges)


def chat_event(
    message: twitchio.ChatMessage,
    bot_id: str,
    *,
    joined: Mapping[str, str] | None = None,
    streams: StreamInfos | None = None,
) -> ChatEvent:
    """`joined`: the logins of the channels the bot reads, by broadcaster id."""
    chatter = message.chatter
    broadcaster = message.broadcaster
    source = source_channel(message)
    if source is not None and joined is not None and source.id in joined:
        # Answered where it was typed, with the chatter's badges there: a moderator of the
        # channel that shows a copy is not one where the bot answers.
        channel, channel_id = joined[source.id], source.id
        badges = badge_names(message.source_badges)
    else:
        # The source is not read by the bot: answered in the channel that showed it, whose
        # badges say who may do what there (the source's moderators may not switch it off).
        channel, channel_id = (broadcaster.name or broadcaster.id).lower(), broadcaster.id
        badges = badge_names(message.badges)
    stream: StreamInfo = streams.get(channel_id) if streams is not None else UNKNOWN
    return ChatEvent(
        platform="twitch",
        channel=channel,
        # EventSub's JSON may carry a lone surrogate ("\ud800"): the event crosses the channel
        # layer (msgpack on Redis), which cannot encode one.
        user=without_lone_surrogates(display_name(chatter)),
        text=without_lone_surrogates(message.text),
        message_id=source_message_id(message),
        is_moderator=bool(badges & MODERATOR_BADGES),
        is_broadcaster="broadcaster" in badges or chatter.id == channel_id,
        mentions_bot=mentions_user(message, bot_id),
        user_id=chatter.id,
        channel_id=channel_id,
        is_subscriber=bool(badges & SUBSCRIBER_BADGES),
        is_vip="vip" in badges,
        stream_title=stream.title,
        stream_game=stream.game,
    )
