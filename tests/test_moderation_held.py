"""Held answers are kept for review; the chat text only with HISTORY_STORE_CHAT; never a raise."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chatbridge.moderation.held import hold
from chatbridge.moderation.models import HeldReply
from tests.proxied_database import database_away

pytestmark = pytest.mark.django_db(transaction=True)


async def hold_one(**overrides: str) -> None:
    values = {
        "platform": "twitch",
        "channel": "streamer",
        "user": "viewer42",
        "reason": HeldReply.Reason.BLOCKED_TERM.value,
        "term": "connard",
        "question": "dis une insulte",
        "answer": "connard",
    }
    await hold(**{**values, **overrides})


async def test_it_keeps_the_question_and_answer_with_history_store_chat(settings: Any) -> None:
    settings.HISTORY_STORE_CHAT = True
    await hold_one()
    row = await HeldReply.objects.aget()
    assert (row.platform, row.channel, row.user, row.reason, row.term) == (
        "twitch",
        "streamer",
        "viewer42",
        "blocked_term",
        "connard",
    )
    assert (row.question, row.answer, row.reviewed) == ("dis une insulte", "connard", False)


async def test_it_keeps_only_when_where_who_and_why_without_it(settings: Any) -> None:
    settings.HISTORY_STORE_CHAT = False
    await hold_one(reason=HeldReply.Reason.MODERATION.value, term="harassment, violence")
    row = await HeldReply.objects.aget()
    assert (row.user, row.reason, row.term) == ("viewer42", "moderation", "harassment, violence")
    assert (row.question, row.answer) == ("", "")


async def test_overlong_fields_are_cut_to_fit(settings: Any) -> None:
    settings.HISTORY_STORE_CHAT = True
    await hold_one(channel="c" * 300, user="u" * 300, term="t" * 300, answer="a" * 5000)
    row = await HeldReply.objects.aget()
    assert (len(row.channel), len(row.user), len(row.term), len(row.answer)) == (100, 100, 200, 5000)


async def test_a_database_outage_costs_the_row_not_the_reply(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "chatbridge.moderation")
    async with database_away():
        await hold_one()  # does not raise
        await hold_one()
    await hold_one()
    assert await HeldReply.objects.acount() == 1
    lines = [r.getMessage() for r in caplog.records]
    assert len([line for line in lines if "held replies: cannot reach" in line]) == 1
    assert len([line for line in lines if "held replies:" in line and "is back after" in line]) == 1
