"""The bot's Twitch user token in the database (twitchio's token hooks read and write here).

Tokens are never logged, printed or rendered: functions here return them only to
the twitchio client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from asgiref.sync import sync_to_async
from django.utils import timezone

from chatbridge.models import TwitchToken
from serdabot.encryption import check


@dataclass(frozen=True, slots=True)
class TokenPair:
    user_id: str
    token: str = field(repr=False)
    refresh: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Stored:
    """The bot account's stored token, and when the setup page stored it (None: not there)."""

    pair: TokenPair
    connected: datetime | None


def load_pair(user_id: str) -> Stored | None:
    """The stored token of `user_id` (the bot account), or None. SecretUnreadable when it was
    encrypted with another key (the message says what to do). Other accounts' rows are not
    read: one of them unreadable must not keep the bot from starting."""
    row = TwitchToken.objects.filter(user_id=user_id).first() if user_id else None
    if row is None:
        return None
    what = "the stored Twitch token"
    return Stored(TokenPair(row.user_id, check(row.token, what), check(row.refresh, what)), row.connected)


def store_pair(
    user_id: str, token: str, refresh: str, *, login: str = "", scopes: str = "", connected: bool = False
) -> None:
    """Store a token. `connected`: the setup page (or `twitchlogin`) got it: a running adapter
    restarts with it (chatbridge/adapters/setup_watch.py)."""
    defaults: dict[str, object] = {"token": token, "refresh": refresh, "needs_reconnect": False}
    if login:
        defaults["login"] = login
    if scopes:
        defaults["scopes"] = scopes
    if connected:
        defaults["connected"] = timezone.now()
    TwitchToken.objects.update_or_create(user_id=user_id, defaults=defaults)


def store_kept(user_id: str, token: str, refresh: str, *, since: datetime | None) -> bool:
    """Store the token twitchio keeps (validated, refreshed), unless the setup page stored a
    newer connection since this client loaded its own (`since`): an adapter closing must not
    write the old account's token over the new one. True when stored."""
    if not TwitchToken.objects.filter(user_id=user_id).exists():
        store_pair(user_id, token, refresh)
        return True
    updated = TwitchToken.objects.filter(user_id=user_id, connected=since).update(
        token=token, refresh=refresh, needs_reconnect=False, updated=timezone.now()
    )
    return bool(updated)


def mark_needs_reconnect(user_id: str) -> None:
    """Twitch refused the token and its refresh token: the connect page says "reconnect"."""
    TwitchToken.objects.filter(user_id=user_id).update(needs_reconnect=True)


aload_pair = sync_to_async(load_pair)
astore_kept = sync_to_async(store_kept)
amark_needs_reconnect = sync_to_async(mark_needs_reconnect)
