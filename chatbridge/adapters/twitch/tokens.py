"""The bot's Twitch user token in the database (twitchio's token hooks read and write here).

Tokens are never logged, printed or rendered: functions here return them only to
the twitchio client.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asgiref.sync import sync_to_async

from chatbridge.models import TwitchToken
from serdabot.encryption import check


@dataclass(frozen=True, slots=True)
class TokenPair:
    user_id: str
    token: str = field(repr=False)
    refresh: str = field(repr=False)


def load_pairs() -> list[TokenPair]:
    """The stored tokens, newest first. SecretUnreadable when they were encrypted with
    another key (the message says what to do)."""
    return [
        TokenPair(
            t.user_id, check(t.token, "the stored Twitch token"), check(t.refresh, "the stored Twitch token")
        )
        for t in TwitchToken.objects.order_by("-updated")
    ]


def store_pair(user_id: str, token: str, refresh: str, *, login: str = "", scopes: str = "") -> None:
    defaults: dict[str, object] = {"token": token, "refresh": refresh, "needs_reconnect": False}
    if login:
        defaults["login"] = login
    if scopes:
        defaults["scopes"] = scopes
    TwitchToken.objects.update_or_create(user_id=user_id, defaults=defaults)


def mark_needs_reconnect(user_id: str) -> None:
    """Twitch refused the token and its refresh token: the connect page says "reconnect"."""
    TwitchToken.objects.filter(user_id=user_id).update(needs_reconnect=True)


aload_pairs = sync_to_async(load_pairs)
astore_pair = sync_to_async(store_pair)
amark_needs_reconnect = sync_to_async(mark_needs_reconnect)
