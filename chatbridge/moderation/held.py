"""Held answers, kept for moderators to review in the admin.

The question and the answer are kept only with HISTORY_STORE_CHAT: off, the row says
when, where, who and why, not what. Writing it never raises: a database outage costs
the row (said once per outage), never the reply that replaces the held answer.
"""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError

from chatbridge.moderation.models import TERM_MAX_LENGTH, HeldReply
from serdabot.database import database_label, reconnecting
from serdabot.outage import Outage

log = logging.getLogger("chatbridge.moderation")

_outage: Outage | None = None


def outage() -> Outage:
    # Made on first use: the database is named from settings this module may be imported before.
    global _outage
    if _outage is None:
        _outage = Outage("held replies", database_label(), log)
    return _outage


async def hold(
    *, platform: str, channel: str, user: str, reason: str, term: str, question: str, answer: str
) -> None:
    store = settings.HISTORY_STORE_CHAT
    row = HeldReply(
        platform=platform[:16],
        channel=channel[:100],
        user=user[:100],
        reason=reason[:32],
        term=term[:TERM_MAX_LENGTH],
        question=question if store else "",
        answer=answer if store else "",
    )
    log.info("held an answer in %s/%s: %s", platform, channel, reason)
    try:
        await sync_to_async(_save)(row)
    except DatabaseError as exc:
        outage().failed(exc)
        return
    except Exception:  # a bug: said, but the reply that replaces the answer still goes out
        log.exception("keeping a held answer failed")
        return
    outage().recovered()


def _save(row: HeldReply) -> None:
    with reconnecting():
        row.save()
