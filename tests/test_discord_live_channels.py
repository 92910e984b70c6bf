"""The channels picked on the setup page, followed by a running Discord adapter without a
restart: real discord.py against the fake Discord, the page through Django's test client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client

from chatbridge.adapters.discord import DiscordAdapter
from chatbridge.models import ChannelSettings, DiscordBot
from tests.adapter_support import eventually, running, running_bot
from tests.fakes import fake_discord as dc
from tests.fakes.clock import ManualClock
from tests.fakes.fake_discord import FakeDiscord, message_create

pytestmark = pytest.mark.django_db(transaction=True)

SERVER = "Le serveur du stream"
CHANNELS = {dc.CHANNEL: "general", dc.OTHER_CHANNEL: "off-topic"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    discord = await FakeDiscord().start()
    yield discord
    await discord.close()


@pytest.fixture
async def layer() -> AsyncIterator[Any]:
    async with running_bot() as layer:
        yield layer


def set_up(picked: str) -> Client:
    """As the setup page left it: only the picked channel, both rows there (no cooldowns,
    so each message's fate is the channel's alone)."""
    DiscordBot.objects.create(pk=1, only_listed=True)
    for channel, name in CHANNELS.items():
        ChannelSettings.objects.create(
            platform="discord",
            channel=channel,
            label=f"{SERVER} #{name}",
            guild_id=dc.GUILD,
            joined=channel == picked,
            user_cooldown=0,
            channel_cooldown=0,
        )
    client = Client()
    client.force_login(User.objects.create_user("streamer", password="x", is_staff=True))
    return client


def pick(client: Client, picked: list[str], *, only_listed: bool = True) -> None:
    data: dict[str, Any] = {
        "shown": [f"{dc.GUILD}:{c}" for c in CHANNELS],
        "channel": picked,
        **{f"label-{c}": f"{SERVER} #{name}" for c, name in CHANNELS.items()},
    }
    if only_listed:
        data["only_listed"] = "on"
    response = client.post("/discord/channels/", data)
    assert response.status_code == 302


class Chat:
    """Questions in the fake's channels, each from a new member (no user cooldown to hit)."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.next_id = 9000

    async def ask(self, channel: str) -> str:
        self.next_id += 1
        author = {**dc.HUMAN, "id": str(self.next_id), "username": f"user{self.next_id}"}
        message_id = str(self.next_id)
        await self.fake.dispatch(
            "MESSAGE_CREATE",
            message_create("!ask ça va ?", message_id=message_id, channel=channel, author=author),
        )
        return message_id

    async def answered_only(self, answered: str, ignored: str) -> None:
        """`answered`'s question gets its reply and `ignored`'s none (asked first: the gateway
        delivers in order, so once the second is answered the first was decided)."""
        refused = await self.ask(ignored)
        granted = await self.ask(answered)
        await eventually(lambda: self.fake.replies_to(granted), what=f"the reply in {answered}")
        assert self.fake.replies_to(refused) == []


async def test_a_channel_picked_or_unpicked_on_the_page_is_followed_live(
    fake: FakeDiscord, layer: Any
) -> None:
    client = await sync_to_async(set_up)(dc.CHANNEL)
    adapter = DiscordAdapter(fake.config(only_listed=True, channels=(dc.CHANNEL,)), clock=ManualClock())
    chat = Chat(fake)
    async with running(adapter):
        await asyncio.wait_for(fake.identified.wait(), 10)
        await chat.answered_only(dc.CHANNEL, ignored=dc.OTHER_CHANNEL)

        await sync_to_async(pick)(client, [dc.OTHER_CHANNEL])
        await chat.answered_only(dc.OTHER_CHANNEL, ignored=dc.CHANNEL)

        await sync_to_async(pick)(client, [dc.CHANNEL, dc.OTHER_CHANNEL])
        both = [await chat.ask(dc.CHANNEL), await chat.ask(dc.OTHER_CHANNEL)]
        await eventually(lambda: all(fake.replies_to(m) for m in both), what="a reply in each channel")

    assert len(fake.identifies) == 1  # the same connection all along: no restart


async def test_the_only_picked_switch_is_followed_live(fake: FakeDiscord, layer: Any) -> None:
    client = await sync_to_async(set_up)(dc.CHANNEL)
    adapter = DiscordAdapter(fake.config(only_listed=True, channels=(dc.CHANNEL,)), clock=ManualClock())
    chat = Chat(fake)
    async with running(adapter):
        await asyncio.wait_for(fake.identified.wait(), 10)
        await chat.answered_only(dc.CHANNEL, ignored=dc.OTHER_CHANNEL)

        await sync_to_async(pick)(client, [dc.CHANNEL], only_listed=False)
        everywhere = await chat.ask(dc.OTHER_CHANNEL)
        await eventually(lambda: fake.replies_to(everywhere), what="the reply in the unpicked channel")

        await sync_to_async(pick)(client, [dc.CHANNEL], only_listed=True)
        await chat.answered_only(dc.CHANNEL, ignored=dc.OTHER_CHANNEL)

    assert len(fake.identifies) == 1


async def test_a_channel_seen_for_the_first_time_is_not_picked(fake: FakeDiscord, layer: Any) -> None:
    adapter = DiscordAdapter(fake.config(), clock=ManualClock())  # every channel answered
    chat = Chat(fake)
    async with running(adapter):
        await asyncio.wait_for(fake.identified.wait(), 10)
        asked = await chat.ask(dc.OTHER_CHANNEL)
        await eventually(lambda: fake.replies_to(asked), what="the reply")

        def row() -> ChannelSettings | None:
            return ChannelSettings.objects.filter(platform="discord", channel=dc.OTHER_CHANNEL).first()

        for _ in range(500):
            found = await sync_to_async(row)()
            if found is not None:
                break
            await asyncio.sleep(0.01)

    assert found is not None and found.joined is False
    assert found.label == f"{SERVER} #off-topic"
