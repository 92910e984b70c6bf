"""What the handler tests share: a chat line."""

from __future__ import annotations

from chatbridge.events import ChatEvent


def event(text: str, **fields: object) -> ChatEvent:
    """A Twitch line from viewer32 in #streamer; `fields` override any of it."""
    values: dict[str, object] = {
        "platform": "twitch",
        "channel": "streamer",
        "user": "viewer32",
        "text": text,
    }
    values.update(fields)
    return ChatEvent(**values)  # type: ignore[arg-type]
