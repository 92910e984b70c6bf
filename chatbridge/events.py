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

    def to_message(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies recursively, and this runs for every chat line.
        return {name: getattr(self, name) for name in _EVENT_FIELDS}

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> ChatEvent:
        return cls(**{k: v for k, v in data.items() if k in _EVENT_FIELDS})


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

    def to_message(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _REPLY_FIELDS}

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> Reply:
        return cls(**{k: v for k, v in data.items() if k in _REPLY_FIELDS})


_EVENT_FIELDS = frozenset(f.name for f in fields(ChatEvent))
_REPLY_FIELDS = frozenset(f.name for f in fields(Reply))
