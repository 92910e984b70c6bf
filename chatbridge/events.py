"""The platform-neutral chat event and reply, and their channel-layer form.

Adapters turn platform messages into a `ChatEvent`; the handler turns it into a
`Reply` (or nothing). Both travel through the channel layer as plain dicts, so a
worker in another process can handle an event from any adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

# Channel the workers read chat events from. Every worker process reads the same
# channel: the layer hands each message to exactly one of them.
WORKER_CHANNEL = "chatbridge.worker"


@dataclass(frozen=True, slots=True)
class ChatEvent:
    platform: str  # "twitch", "discord", "console", "web"
    channel: str  # channel login / id / name as the platform knows it
    user: str  # display name used in the reply's "@user "
    text: str
    message_id: str = ""
    is_moderator: bool = False
    is_broadcaster: bool = False
    # Set by adapters whose platform marks mentions structurally (Twitch fragments,
    # Discord mentions); the handler also looks for the bot's names in the text.
    mentions_bot: bool = False
    user_id: str = ""
    channel_id: str = ""
    # Custom commands may be kept to subscribers or VIPs (Twitch badges; False elsewhere).
    is_subscriber: bool = False
    is_vip: bool = False
    # The stream's current title and game (Twitch: Helix at start, EventSub channel.update),
    # set by the adapter so a worker in another process can put them in the prompt.
    stream_title: str = ""
    stream_game: str = ""
    # Discord: the ids of the users the message mentions, in order (display names are not
    # unique there: `!serdabot forget @name` finds the viewer by id).
    mention_ids: tuple[str, ...] = ()
    # A readable channel name for `{channel}` in phrases where `channel` is an id (Discord).
    channel_name: str = ""

    def to_message(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies recursively, and this runs for every chat line.
        return {name: getattr(self, name) for name in _EVENT_FIELDS}

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> ChatEvent:
        values = {k: v for k, v in data.items() if k in _EVENT_FIELDS}
        # The layer gives a list back (msgpack, JSON).
        values["mention_ids"] = tuple(str(i) for i in values.get("mention_ids") or ())
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Reply:
    platform: str
    channel: str
    user: str
    text: str  # already safe for chat: one line, within the platform's limit
    source: str  # "local", "openai" or "fallback"
    intent: str
    latency_ms: float
    reply_to: str = ""  # message id of the triggering message
    channel_id: str = ""
    command: str = ""  # "ask", "chill", "mention": what cooldowns are keyed on
    # The phrase set the text came from ("ask", "chill", "ask_timeout", "ask_error", a custom
    # intent, "usage" for the empty-!ask hint); None when a model answered.
    fallback_intent: str | None = None
    first_token_ms: float | None = None  # None without a model answer
    # Each tier the cascade tried or skipped, in order, as TierAttempt.as_dict() gives them.
    tiers: tuple[dict[str, Any], ...] = ()
    # The phrase as written (before {user} and "@user "), when a phrase set answered in the
    # fun mode: the relay uses it so a channel never gets the same phrase twice in a row,
    # whichever worker picked it.
    phrase: str = ""

    def to_message(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _REPLY_FIELDS}
        # Plain lists and dicts: what msgpack (channels_redis) and JSON give back anyway.
        data["tiers"] = [dict(tier) for tier in self.tiers]
        return data

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> Reply:
        values = {k: v for k, v in data.items() if k in _REPLY_FIELDS}
        # The layer turns the tuple into a list (msgpack) or may carry None from an older sender.
        values["tiers"] = tuple(dict(tier) for tier in values.get("tiers") or ())
        return cls(**values)


def reply_json(reply: Reply | None) -> dict[str, Any]:
    """What `chat --json` prints and the web chat receives: the same keys with or without a reply."""
    if reply is None:
        return {
            "reply": None,
            "source": None,
            "intent": None,
            "latency_ms": None,
            "fallback_intent": None,
            "first_token_ms": None,
            "tiers": [],
        }
    return {
        "reply": reply.text,
        "source": reply.source,
        "intent": reply.intent,
        "latency_ms": reply.latency_ms,
        "fallback_intent": reply.fallback_intent,
        "first_token_ms": reply.first_token_ms,
        "tiers": [dict(tier) for tier in reply.tiers],
    }


_EVENT_FIELDS = frozenset(f.name for f in fields(ChatEvent))
_REPLY_FIELDS = frozenset(f.name for f in fields(Reply))
