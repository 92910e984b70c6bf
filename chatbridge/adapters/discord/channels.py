"""Which channel's settings a Discord message follows, and which rows are already made.

Discord hands a bot far more channels than anyone configures: every thread, every DM.
A settings row for each would grow the table that every process loads, so:
- a thread follows its parent channel: its row, its cooldowns, its reply queue (discord.py
  gives a thread's parent as `Thread.parent_id`);
- a DM follows the defaults and gets no row (`DISCORD_ALLOW_DMS` is the switch for DMs);
- a channel discord.py has not cached (a `PartialMessageable`: its kind is unknown) follows
  a row only if the admin made one, and none is made for it.
Only text, voice and stage channels of a server get a row, the first time they speak.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import discord

from chatbridge.recent import Recent

# Rows this process has made sure of. Past the bound the least recently seen channel is
# forgotten; one idle that long is forgotten too. Forgetting costs one `get_or_create`
# when the channel speaks again, never a second row.
SEEN_LIMIT = 10_000
SEEN_IDLE = 6 * 3600.0  # seconds


def settings_channel(channel: discord.abc.MessageableChannel) -> str:
    """The channel key a message's settings, cooldowns and reply queue are filed under."""
    if isinstance(channel, discord.Thread):
        return str(channel.parent_id)
    return str(channel.id)


@dataclass(frozen=True, slots=True)
class Row:
    channel: str
    label: str  # what the admin shows: "Server #channel"


def row_for(guild: discord.Guild | None, channel: object) -> Row | None:
    """The settings row a message's (or slash command's) channel should have; None when it gets none."""
    if guild is None:
        return None  # a DM: the defaults
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        name = parent.name if parent is not None else str(channel.parent_id)
        return Row(str(channel.parent_id), f"{guild.name or guild.id} #{name}")
    if isinstance(channel, discord.abc.GuildChannel):
        return Row(str(channel.id), f"{guild.name or guild.id} #{channel.name}")
    return None


class SeenChannels(Recent):
    """Recently seen channels: a bounded LRU with an idle expiry."""

    def __init__(
        self, clock: Callable[[], float], *, limit: int = SEEN_LIMIT, idle: float = SEEN_IDLE
    ) -> None:
        super().__init__(clock, keep_for=idle, at_most=limit, renew=True)

    def first_sight(self, channel: str) -> bool:
        """Note the channel; True when it was not remembered (new, forgotten or expired)."""
        return not self.note(channel)
