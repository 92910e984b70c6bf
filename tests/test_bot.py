"""The bot process's small steps (chatbridge/bot.py) that need no whole process to test."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from chatbridge.bot import keep_trying_phrases, warm_phrases
from fallbacks import cache
from fallbacks.commands import custom_commands
from fallbacks.models import Intent
from tests.llm_helpers import eventually
from tests.proxied_database import database_away

pytestmark = pytest.mark.django_db(transaction=True)


def add_discord() -> None:
    Intent.objects.create(slug="discord").phrases.create(text="discord.gg/serdabot")


async def test_an_adapter_process_started_without_its_database_learns_custom_commands_when_it_returns() -> (
    None
):
    await sync_to_async(add_discord)()
    cache.clear()
    async with database_away():
        assert not await warm_phrases()
        retry = asyncio.create_task(keep_trying_phrases(first=0.05, cap=0.1))
        await asyncio.sleep(0.3)
        # Built-in phrases meanwhile, and no query tried per chat line from the event loop.
        assert "discord" not in custom_commands()
        assert not retry.done()
    # No phrase edited, no restart: the retry alone loads them.
    await eventually(lambda: "discord" in custom_commands(), within=5)
    await asyncio.wait_for(retry, 5)
