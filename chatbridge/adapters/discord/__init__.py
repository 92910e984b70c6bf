"""Discord through discord.py 2.7 (optional: runs when DISCORD_TOKEN is set)."""

from __future__ import annotations

from chatbridge.adapters.discord.adapter import DiscordAdapter

__all__ = ["DiscordAdapter"]
