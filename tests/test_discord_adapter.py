"""The Discord adapter: real discord.py against a fake Discord (REST + gateway) on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from chatbridge.adapters.discord import DiscordAdapter
from chatbridge.adapters.errors import AdapterFatal
from chatbridge.adapters.outbound import Outgoing
from chatbridge.models import ChannelSettings
from tests.adapter_support import eventually, running, running_bot
from tests.fakes import fake_discord as dc
from tests.fakes.clock import ManualClock
from tests.fakes.fake_discord import FakeDiscord, message_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    discord = await FakeDiscord().start()
    yield discord
    await discord.close()


@pytest.fixture
async def layer() -> AsyncIterator[Any]:
    async with running_bot() as layer:
        yield layer


def adapter_for(fake: FakeDiscord, **config: Any) -> DiscordAdapter:
    return DiscordAdapter(fake.config(**config), layer=None, clock=ManualClock())


async def say(fake: FakeDiscord, message_id: str, content: str, **kwargs: Any) -> str:
    await fake.dispatch("MESSAGE_CREATE", message_create(content, message_id=message_id, **kwargs))
    return message_id


async def test_it_answers_an_ask_with_one_safe_reply(fake: FakeDiscord, layer: Any) -> None:
    adapter = adapter_for(fake)
    async with running(adapter):
        await asyncio.wait_for(fake.identified.wait(), 10)
        asked = await say(fake, "6001", "!ask c'est quoi @everyone ?")
        await eventually(lambda: fake.replies_to(asked), what="the reply")
        other = await say(fake, "6002", "!chill", author={**dc.HUMAN, "id": "2001", "username": "bob"})
        await eventually(lambda: fake.replies_to(other), what="the second reply")

    (reply,) = fake.replies_to(asked)
    assert reply["allowed_mentions"] == {"parse": []}  # no @everyone, roles, users, nor the replied user
    assert reply["channel"] == dc.CHANNEL
    assert reply["content"].startswith("@Alice ")
    assert len(reply["content"]) <= 2000
    assert len(fake.posts) == 2
    assert {"GET /api/v10/users/@me", "GET /api/v10/oauth2/applications/@me"} <= set(fake.requests)


async def test_a_mention_of_the_bot_is_answered(fake: FakeDiscord, layer: Any) -> None:
    adapter = adapter_for(fake)
    async with running(adapter):
        await asyncio.wait_for(fake.identified.wait(), 10)
        mention = await say(fake, "6101", f"<@{dc.BOT['id']}> tu dors ?", mentions=[dc.BOT])
        await eventually(lambda: fake.replies_to(mention), what="the reply")


async def test_bots_are_ignored(fake: FakeDiscord, layer: Any) -> None:
    adapter = adapter_for(fake)
    async with running(adapter):
        await asyncio.wait_for(fake.identified.wait(), 10)
        await say(fake, "6201", "!ask je suis un bot", author=dc.OTHER_BOT)
        await say(fake, "6202", "!ask moi c'est le bot lui-même", author=dc.BOT)
        human = await say(fake, "6203", "!ask et moi ?")
        await eventually(lambda: fake.replies_to(human), what="the human's reply")

    assert len(fake.posts) == 1
    assert adapter.status.messages_in == 1


async def test_only_listed_channels_are_answered(fake: FakeDiscord, layer: Any) -> None:
    adapter = adapter_for(fake, channels=(dc.OTHER_CHANNEL,))
    async with running(adapter):
        await asyncio.wait_for(fake.identified.wait(), 10)
        await say(fake, "6301", "!ask ici ?", channel=dc.CHANNEL)
        listed = await say(fake, "6302", "!ask et là ?", channel=dc.OTHER_CHANNEL)
        await eventually(lambda: fake.replies_to(listed), what="the reply in the listed channel")

    assert [p["channel"] for p in fake.posts] == [dc.OTHER_CHANNEL]


async def test_a_429_is_retried_by_discordpy_and_still_answered(fake: FakeDiscord, layer: Any) -> None:
    fake.rate_limit_next = 1
    adapter = adapter_for(fake)
    async with running(adapter):
        await asyncio.wait_for(fake.identified.wait(), 10)
        asked = await say(fake, "6401", "!ask on se calme ?")
        await eventually(lambda: fake.replies_to(asked), what="the reply after the 429")

    assert fake.post_attempts == 2
    assert len(fake.posts) == 1
    assert adapter.status.messages_out == 1 and adapter.status.replies_dropped == 0


async def test_a_refused_token_is_fatal(fake: FakeDiscord, layer: Any) -> None:
    adapter = DiscordAdapter(fake.config(token="wrong.discord.token"), clock=ManualClock())
    with pytest.raises(AdapterFatal, match="DISCORD_TOKEN") as caught:
        await adapter.run()

    assert "wrong.discord.token" not in str(caught.value)


async def test_a_long_reply_is_cut_to_discords_limit(fake: FakeDiscord, layer: Any) -> None:
    adapter = adapter_for(fake)
    async with running(adapter):
        assert adapter.relay is not None
        adapter.relay.outbound.put(Outgoing(dc.CHANNEL, dc.CHANNEL, "@Alice " + "bavard " * 1000, "6501"))
        await eventually(lambda: fake.replies_to("6501"), what="the long reply")

    content = fake.replies_to("6501")[0]["content"]
    assert 1900 < len(content) <= 2000 and content.endswith("…")


async def test_a_channel_that_speaks_gets_its_settings_row(fake: FakeDiscord, layer: Any) -> None:
    adapter = adapter_for(fake)
    async with running(adapter):
        await asyncio.wait_for(fake.identified.wait(), 10)
        asked = await say(fake, "6601", "!ask il y a quelqu'un ?")
        await eventually(lambda: fake.replies_to(asked), what="the reply")

        def row() -> ChannelSettings | None:
            return ChannelSettings.objects.filter(platform="discord", channel=dc.CHANNEL).first()

        for _ in range(500):
            found = await sync_to_async(row)()
            if found is not None:
                break
            await asyncio.sleep(0.01)

    assert found is not None and found.label == "Le serveur du stream #general"


async def test_the_server_owner_bypasses_the_cooldown_a_member_hits(fake: FakeDiscord, layer: Any) -> None:
    owner = {**dc.HUMAN, "id": dc.OWNER_ID, "username": "streamer", "global_name": "Streamer"}
    adapter = adapter_for(fake)
    async with running(adapter):
        await asyncio.wait_for(fake.identified.wait(), 10)
        first = await say(fake, "6701", "!ask un")
        await eventually(lambda: fake.replies_to(first), what="the member's reply")
        await say(fake, "6702", "!ask deux")
        await eventually(lambda: adapter.status.cooldown_hits == 1, what="the member's cooldown")
        mine = await say(fake, "6703", "!ask trois", author=owner)
        await eventually(lambda: fake.replies_to(mine), what="the owner's reply")
        again = await say(fake, "6704", "!ask quatre", author=owner)
        await eventually(lambda: fake.replies_to(again), what="the owner's second reply")

    assert [p["message_reference"]["message_id"] for p in fake.posts] == [6701, 6703, 6704]
