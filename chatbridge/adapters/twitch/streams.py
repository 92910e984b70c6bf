"""Each joined channel's stream title and game, for the prompt.

Read from Helix at start and kept current by EventSub `channel.update`. Titles are
the broadcaster's free text: kept on one line, bounded, without lone surrogates (the
event crosses the channel layer, which cannot encode one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chatbridge.sanitize import one_line, trim

TITLE_LIMIT = 140  # Twitch allows 140 characters; a longer one would only come from a bug
GAME_LIMIT = 100


@dataclass(frozen=True, slots=True)
class StreamInfo:
    title: str = ""
    game: str = ""


UNKNOWN = StreamInfo()


class StreamInfos:
    """Title and game by broadcaster id. Its owner stores only joined channels: bounded by them."""

    def __init__(self) -> None:
        self._by_channel: dict[str, StreamInfo] = {}

    def update(self, channel_id: str, title: str | None, game: str | None) -> None:
        self._by_channel[channel_id] = StreamInfo(
            trim(one_line(title or ""), TITLE_LIMIT), trim(one_line(game or ""), GAME_LIMIT)
        )

    def keep_only(self, channel_ids: Iterable[str]) -> None:
        """Forget the channels the bot no longer reads."""
        kept = set(channel_ids)
        self._by_channel = {k: v for k, v in self._by_channel.items() if k in kept}

    def get(self, channel_id: str) -> StreamInfo:
        return self._by_channel.get(channel_id, UNKNOWN)

    def __len__(self) -> int:
        return len(self._by_channel)
