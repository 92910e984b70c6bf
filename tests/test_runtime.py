"""BotRuntime.start with the database unreachable: the bot answers, and loads its caches once it is back."""

from __future__ import annotations

import logging

import pytest

from chatbridge.channel_settings import settings_cache
from chatbridge.handler import Handler
from chatbridge.models import ChannelSettings
from chatbridge.runtime import BotRuntime
from fallbacks import builtin, cache, services
from fallbacks.models import Intent, Phrase
from tests.conftest import disabled_llm
from tests.llm_helpers import eventually
from tests.proxied_database import database_through_a_proxy

STORED_PHRASE = "Phrase rangée en base, servie dès que la base répond 💾"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


@pytest.fixture(autouse=True)
def cold_caches() -> None:
    cache.clear()
    settings_cache.clear()


async def test_a_database_down_at_start_is_said_once_then_the_caches_load_when_it_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await ChannelSettings.objects.acreate(platform="twitch", channel="streamer", user_cooldown=99)
    # A phrase of the test's own: earlier transactional tests may have flushed the seeded ones.
    intent, _ = await Intent.objects.aget_or_create(slug="ask")
    await Phrase.objects.filter(intent=intent).adelete()
    await Phrase.objects.acreate(intent=intent, text=STORED_PHRASE)
    # Saving the row reloads the caches (the change notice): cold again, as at a process start.
    cache.clear()
    settings_cache.clear()
    llm = disabled_llm()
    bot = BotRuntime(llm, Handler(llm))
    async with database_through_a_proxy() as proxy:
        proxy.cut()
        with caplog.at_level(logging.INFO):
            await bot.start(process="chat")
            # Answers from memory: the built-in phrases, the default settings.
            assert services.get_fallback_response("ask") in builtin.PHRASES["ask"]
            assert settings_cache.get("twitch", "streamer").user_cooldown != 99
            warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            assert len(warnings) == 1
            assert 'PostgreSQL database "' in warnings[0] and "unreachable" in warnings[0]

            proxy.restore()
            await eventually(lambda: settings_cache.get("twitch", "streamer").user_cooldown == 99, within=15)
            assert services.get_fallback_response("ask") == STORED_PHRASE
            await bot.stop()
    assert "Traceback" not in caplog.text
    assert [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()] == warnings
