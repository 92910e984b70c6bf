"""The handler reads each channel's settings from memory: extra names, enabled commands, fallback mode."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatbridge.channel_settings import ChannelSettingsCache
from chatbridge.events import ChatEvent
from chatbridge.handler import Handler
from chatbridge.models import ChannelSettings
from tests.conftest import disabled_llm

pytestmark = pytest.mark.usefixtures("warm_phrases")


@pytest.fixture
def cache(db: None) -> Iterator[ChannelSettingsCache]:
    ChannelSettings.objects.create(
        platform="twitch",
        channel="streamer",
        chill_enabled=False,
        fallback_mode="minimal",
        extra_names="robotte",
    )
    cache = ChannelSettingsCache()
    cache.load()
    yield cache


def handler(cache: ChannelSettingsCache) -> Handler:
    return Handler(disabled_llm(), bot_names=("serdabot",), channel_settings=cache)


def event(text: str, channel: str = "streamer") -> ChatEvent:
    return ChatEvent(platform="twitch", channel=channel, user="viewer32", text=text)


async def test_the_channels_extra_names_count_as_mentions(cache: ChannelSettingsCache) -> None:
    reply = await handler(cache).handle(event("salut robotte !"))
    assert reply is not None and reply.command == "mention"
    assert await handler(cache).handle(event("salut robotte !", channel="elsewhere")) is None


async def test_a_disabled_command_gets_no_reply(cache: ChannelSettingsCache) -> None:
    assert await handler(cache).handle(event("!chill")) is None
    assert await handler(cache).handle(event("!chill", channel="elsewhere")) is not None


async def test_the_channels_fallback_mode_wins_over_the_global_one(cache: ChannelSettingsCache) -> None:
    reply = await handler(cache).handle(event("!ask quoi ?"))
    assert reply is not None and reply.text == "@viewer32 🤖"
    other = await handler(cache).handle(event("!ask quoi ?", channel="elsewhere"))
    assert other is not None and other.text != "@viewer32 🤖"
