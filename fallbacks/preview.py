"""A phrase as chat would get it, for the admin's "Try this phrase".

The reply is built by the same functions the handler uses on a phrase (chatbridge.sanitize:
`{user}` and `{channel}` filled, `@user ` in front, one line, no leading "/" or ".", cut to
the platform's limit), so the preview cannot drift from what the bot sends.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from chatbridge.sanitize import chat_body, fill_variables, format_reply, limit_for, one_line

# Who the preview answers, and where: a viewer and a channel name as chat shows them.
SAMPLE_USER = "viewer42"
SAMPLE_CHANNEL = "streamer"
PLATFORMS = ("twitch", "discord")
PLATFORM_NAMES = {"twitch": "Twitch", "discord": "Discord"}
_UNLIMITED = sys.maxsize


@dataclass(frozen=True, slots=True)
class ChatPreview:
    platform: str
    reply: str  # the whole line chat reads, "@user " included
    limit: int  # the platform's limit on a chat message
    cut: bool  # the phrase was shortened to fit the limit

    @property
    def platform_name(self) -> str:
        return PLATFORM_NAMES.get(self.platform, self.platform)

    @property
    def length(self) -> int:
        return len(self.reply)


def chat_reply(text: str, platform: str, *, user: str = SAMPLE_USER, channel: str = SAMPLE_CHANNEL) -> str:
    """The line the handler sends when `text` is the phrase it picked for `user` in `channel`."""
    return format_reply(user, fill_variables(text, user=user, channel=channel), limit_for(platform))


def preview(
    text: str, platform: str, *, user: str = SAMPLE_USER, channel: str = SAMPLE_CHANNEL
) -> ChatPreview:
    reply = chat_reply(text, platform, user=user, channel=channel)
    # The same reply with no limit: any difference is the cut.
    whole = format_reply(user, fill_variables(text, user=user, channel=channel), _UNLIMITED)
    return ChatPreview(platform, reply, limit_for(platform), cut=reply != whole)


def previews(text: str) -> list[ChatPreview]:
    return [preview(text, platform) for platform in PLATFORMS]


def dropped_start(text: str) -> str:
    """The "/" and "." at the start of `text` that chat will not see (spaces left out), or ""."""
    line = one_line(text)
    # chat_body only strips the start of the line, so what it keeps is a suffix of it.
    return line[: len(line) - len(chat_body(text))].replace(" ", "")
