"""The Discord adapter: real discord.py against a fake Discord (REST + gateway) on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest
from asgiref.sync import sync_to_async

from chatbridge.adapters.discord import DiscordAdapter
from chatbridge.adapters.discord.channels import SeenChannels
from chatbridge.adapters.discord.messages import chat_event
from chatbridge.adapters.errors import AdapterFatal
from chatbridge.adapters.outbound import Outgoing
from chatbridge.models import ChannelSettings
from tests.adapter_support import eventually, running, running_bot
from tests.fakes import fake_discord as dc
from tests.fakes.clock import ManualClock
from tests.fakes.fake_discord import FakeDiscord, message_create, thread_create

pytestmark = pytest.mark.django_db(transaction=True)

SUPPRESS_EMBEDS = 1 << 2  # Discord's message flag: no link previews


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
    assert reply["flags"] & SUPPRESS_EMBEDS
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
        # The fake records the post before discord.py has read its answer and the relay counted it.
        await eventually(lambda: adapter.status.messages_out == 1, what="the reply to be counted as sent")

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


async def test_a_reply_goes_out_unmasked_escaped_and_without_embeds(fake: FakeDiscord, layer: Any) -> None:
    text = "@Ali_ce voici [le guide](https://evil.example/free_nitro) en **gras** et ||caché||"
    adapter = adapter_for(fake)
    async with running(adapter):
        assert adapter.relay is not None
        adapter.relay.outbound.put(Outgoing(dc.CHANNEL, dc.CHANNEL, text, "6801"))
        await eventually(lambda: fake.replies_to("6801"), what="the reply")

    (reply,) = fake.replies_to("6801")
    assert reply["content"] == (
        r"@Ali\_ce voici le guide (https://evil.example/free_nitro) en \*\*gras\*\* et \|\|caché\|\|"
    )
    assert reply["flags"] & SUPPRESS_EMBEDS
    assert reply["allowed_mentions"] == {"parse": []}


async def test_a_display_name_in_markdown_is_escaped_in_the_reply(fake: FakeDiscord, layer: Any) -> None:
    star = {**dc.HUMAN, "id": "2002", "username": "star", "global_name": "*Star*_du_chat"}
    adapter = adapter_for(fake)
    async with running(adapter):
        await asyncio.wait_for(fake.identified.wait(), 10)
        asked = await say(fake, "6901", "!ask ça va ?", author=star)
        await eventually(lambda: fake.replies_to(asked), what="the reply")

    (reply,) = fake.replies_to(asked)
    assert reply["content"].startswith(r"@\*Star\*\_du\_chat ")
    assert reply["flags"] & SUPPRESS_EMBEDS


async def test_a_lone_surrogate_from_the_gateway_never_reaches_the_layer(
    fake: FakeDiscord, layer: Any
) -> None:
    # The fake's JSON carries "\\ud800" escapes, which discord.py decodes into lone surrogates.
    odd = {**dc.HUMAN, "id": "2003", "username": "odd", "global_name": "Zo\ud800é"}
    data: Any = message_create("!ask ça\udfff va ?", message_id="7001", author=odd)
    adapter = adapter_for(fake)
    async with running(adapter):
        await asyncio.wait_for(fake.identified.wait(), 10)
        client = adapter.client
        assert client is not None
        await eventually(lambda: client.get_channel(int(dc.CHANNEL)), what="the guild's channels")
        channel: Any = client.get_channel(int(dc.CHANNEL))
        event = chat_event(discord.Message(state=client._connection, channel=channel, data=data), 1000)
        # On Redis (msgpack) a surrogate left in the event would lose this reply.
        await say(fake, "7002", data["content"], author=odd)
        await eventually(lambda: fake.replies_to("7002"), what="the reply")

    assert (event.user, event.text) == ("Zoé", "!ask ça va ?")
    assert fake.replies_to("7002")[0]["content"].startswith("@Zoé ")


def channel_create(channel_id: str, name: str) -> dict[str, Any]:
    return {
        "id": channel_id,
        "type": 0,
        "guild_id": dc.GUILD,
        "name": name,
        "position": 10,
        "permission_overwrites": [],
    }


def direct_message(content: str, *, message_id: str, channel: str) -> dict[str, Any]:
    data = message_create(content, message_id=message_id, channel=channel)
    del data["guild_id"], data["member"]  # what Discord sends for a DM
    return data


def discord_rows() -> list[str]:
    return sorted(ChannelSettings.objects.filter(platform="discord").values_list("channel", flat=True))


async def rows_once(channel: str) -> list[str]:
    """The Discord rows, once `channel`'s is written (rows are written in the order seen)."""
    for _ in range(1500):
        rows = await sync_to_async(discord_rows)()
        if channel in rows:
            return rows
        await asyncio.sleep(0.01)
    raise AssertionError(f"no settings row for {channel}")


async def test_a_thread_follows_its_parents_settings_and_makes_no_row(fake: FakeDiscord, layer: Any) -> None:
    await sync_to_async(ChannelSettings.objects.create)(
        platform="discord", channel=dc.CHANNEL, label="#general", ask_enabled=False
    )
    adapter = adapter_for(fake)
    async with running(adapter):
        await asyncio.wait_for(fake.identified.wait(), 10)
        await fake.dispatch("THREAD_CREATE", thread_create("4100", parent=dc.CHANNEL))
        await fake.dispatch("THREAD_CREATE", thread_create("4101", parent=dc.OTHER_CHANNEL))
        refused = await say(fake, "7101", "!ask dans le fil ?", channel="4100")
        chill = await say(fake, "7102", "!chill", channel="4100")
        await eventually(lambda: fake.replies_to(chill), what="the !chill in the thread")
        elsewhere = await say(fake, "7103", "!ask et dans l'autre fil ?", channel="4101")
        await eventually(lambda: fake.replies_to(elsewhere), what="the !ask in the other thread")
        rows = await rows_once(dc.OTHER_CHANNEL)

    # The parent's "!ask disabled" holds in its thread; the other parent's defaults hold in its own.
    assert fake.replies_to(refused) == []
    assert [p["channel"] for p in fake.posts] == ["4100", "4101"]  # each reply in its thread
    # A thread that speaks gives its parent the row (named after the parent), never one of its own.
    assert rows == [dc.CHANNEL, dc.OTHER_CHANNEL]
    other = await sync_to_async(ChannelSettings.objects.get)(platform="discord", channel=dc.OTHER_CHANNEL)
    assert other.label == "Le serveur du stream #off-topic"


async def test_a_direct_message_is_answered_with_the_defaults_and_makes_no_row(
    fake: FakeDiscord, layer: Any
) -> None:
    adapter = adapter_for(fake, allow_dms=True)
    async with running(adapter):
        await asyncio.wait_for(fake.identified.wait(), 10)
        await fake.dispatch(
            "MESSAGE_CREATE", direct_message("!ask en privé ?", message_id="7201", channel="4900")
        )
        await eventually(lambda: fake.replies_to("7201"), what="the reply to the DM")
        # A guild channel after it: its row is written after any the DM would have made.
        await say(fake, "7202", "salut")
        rows = await rows_once(dc.CHANNEL)

    assert fake.replies_to("7201")[0]["channel"] == "4900"
    assert rows == [dc.CHANNEL]


async def test_the_channels_it_remembers_stay_within_the_bound(fake: FakeDiscord, layer: Any) -> None:
    clock = ManualClock()
    adapter = DiscordAdapter(fake.config(), layer=None, clock=clock)
    adapter.seen_channels = SeenChannels(clock.now, limit=20, idle=3600)
    channels = [str(5000 + n) for n in range(100)]
    async with running(adapter):
        await asyncio.wait_for(fake.identified.wait(), 10)
        for n, channel in enumerate(channels):
            await fake.dispatch("CHANNEL_CREATE", channel_create(channel, f"salon-{n}"))
            await say(fake, str(8000 + n), "bonjour", channel=channel)
        await eventually(lambda: adapter.status.messages_in == 100, what="the 100 messages")
        rows = await rows_once(channels[-1])
        assert len(adapter.seen_channels) == 20
        # An hour idle: everything is forgotten; the next channel is the only one remembered.
        clock.advance(3600)
        await say(fake, "8100", "re", channel=channels[0])
        await eventually(lambda: adapter.status.messages_in == 101, what="the message after the pause")
        assert len(adapter.seen_channels) == 1

    assert rows == channels  # each channel got its row, once
    assert await sync_to_async(discord_rows)() == channels  # and seeing one again made no second


async def test_the_message_content_intent_refused_by_the_portal_is_fatal(
    fake: FakeDiscord, layer: Any
) -> None:
    fake.message_content_allowed = False
    adapter = adapter_for(fake)
    with pytest.raises(AdapterFatal, match="Message Content intent"):
        await asyncio.wait_for(adapter.run(), 15)


async def test_without_the_message_content_intent_it_connects_and_mentions_are_answered(
    fake: FakeDiscord, layer: Any
) -> None:
    fake.message_content_allowed = False  # switched off in the portal: not asked for
    adapter = adapter_for(fake, message_content=False)
    async with running(adapter):
        await asyncio.wait_for(fake.identified.wait(), 10)
        # Discord still sends the text of a message that mentions the bot.
        mention = await say(fake, "7301", f"<@{dc.BOT['id']}> tu m'entends ?", mentions=[dc.BOT])
        await eventually(lambda: fake.replies_to(mention), what="the reply to the mention")

    (identify,) = fake.identifies
    assert not identify["intents"] & dc.MESSAGE_CONTENT_INTENT
