"""The bot's Twitch user token in the database (twitchio's token hooks read and write here).

Tokens are never logged, printed or rendered: functions here return them only to
the twitchio client.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asgiref.sync import sync_to_async

from chatbridge.models import TwitchToken


@dataclass(frozen=True, slots=True)
class TokenPair:
    user_id: str
    token: str = field(repr=False)
    refresh: str = field(repr=False)


def load_pairs() -> list[TokenPair]:
    return [TokenPair(t.user_id, t.token, t.refresh) for t in TwitchToken.objects.order_by("-updated")]


def store_pair(user_id: str, token: str, refresh: str) -> None:
    TwitchToken.objects.update_or_create(user_id=user_id, defaults={"token": token, "refresh": refresh})


aload_pairs = sync_to_async(load_pairs)
astore_pair = sync_to_async(store_pair)
