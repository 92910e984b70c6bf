"""The link that adds the bot to a server, asking for exactly what the adapter uses.

What the adapter does, and the permission each needs:
- reads the messages of the channels it answers in (on_message): View Channels;
- answers in the channel (sender.py, `channel.send`): Send Messages;
- answers inside a thread, which follows its parent channel (channels.py): Send Messages
  in Threads;
- answers as a reply to the question (`MessageReference`): Discord refuses a reply
  without Read Message History.
It deletes, pins, reacts and embeds nothing (replies carry SUPPRESS_EMBEDS, which needs no
permission on its own message). Slash commands need the `applications.commands` scope,
not a permission.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import discord

AUTHORIZE_URL = "https://discord.com/oauth2/authorize"
SCOPES = ("bot", "applications.commands")


@dataclass(frozen=True, slots=True)
class Needed:
    name: str  # discord.py's (and the Developer Portal's) name for it
    why: str  # a key of the setup page's explanations


NEEDED = (
    Needed("view_channel", "read"),
    Needed("send_messages", "send"),
    Needed("send_messages_in_threads", "threads"),
    Needed("read_message_history", "reply"),
)


def permissions() -> int:
    return discord.Permissions(**{n.name: True for n in NEEDED}).value


def invite_url(application_id: str) -> str:
    query = {
        "client_id": application_id,
        "permissions": str(permissions()),
        "scope": " ".join(SCOPES),
    }
    return f"{AUTHORIZE_URL}?{urlencode(query)}"
