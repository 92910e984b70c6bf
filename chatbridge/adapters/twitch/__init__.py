"""Twitch through twitchio 3: EventSub chat in, Helix chat out."""

from __future__ import annotations

from chatbridge.adapters.twitch.adapter import TwitchAdapter

__all__ = ["TwitchAdapter"]
