"""Channels are rows, followed by the running Twitch adapter: real twitchio against a fake Twitch,
a real database, worker and handler. The adapter reads its settings as `runbot` does
(stored_config: what the setup page stored, the URLs from the environment)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from chatbridge.adapters.status import State
from chatbridge.adapters.twitch import TwitchAdapter
from chatbridge.adapters.twitch.tokens import store_pair
from chatbridge.models import ChannelSettings, TwitchApp
from tests.adapter_support import eventually, running, running_bot
from tests.fakes import fake_twitch as tw
from tests.fakes.clock import ManualClock
from tests.fakes.fake_twitch import FakeTwitch, chat_message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwitch]:
    twitch = await FakeTwitch().start()
    yield twitch
    await twitch.close()


@pytest.fixture
async def layer() -> AsyncIterator[Any]:
    async with running_bot() as layer:
        yield layer


def connect_from_the_setup_page(fake: FakeTwitch, env: pytest.MonkeyPatch) -> None:
    """What /twitch/connect/ leaves: the application, the bot account and its token. Only the
    URLs come from the environment (they point at the fake)."""
    for name, value in fake.env(channels=()).items():
        if name.endswith("_URL"):
            env.setenv(name, value)
        else:
            env.delenv(name, raising=False)
    TwitchApp.objects.create(
        pk=1, client_id=tw.CLIENT_ID, client_secret=tw.CLIENT_SECRET, bot_id=tw.BOT_ID, bot_login=tw.BOT_LOGIN
    )
    store_pair(tw.BOT_ID, tw.USER_TOKEN, tw.REFRESH_TOKEN, login=tw.BOT_LOGIN)


def subscribed(fake: FakeTwitch, broadcaster: tuple[str, str]) -> set[str]:
    return {s["type"] for s in fake.subscriptions if s["condition"]["broadcaster_user_id"] == broadcaster[0]}


def unsubscribed(fake: FakeTwitch, broadcaster: tuple[str, str]) -> list[str]:
    return sorted(
        s["type"] for s in fake.unsubscribed if s["condition"]["broadcaster_user_id"] == broadcaster[0]
    )


async def say(fake: FakeTwitch, text: str, **kwargs: Any) -> str:
    notification = chat_message(text, **kwargs)
    await fake.push(notification)
    return str(notification["payload"]["event"]["message_id"])


def row(channel: str) -> ChannelSettings:
    return ChannelSettings.objects.get(platform="twitch", channel=channel)


def set_joined(channel: str, joined: bool) -> None:
    saved = row(channel)
    saved.joined = joined
    saved.save()


async def test_a_channel_added_paused_and_removed_while_running_is_subscribed_then_unsubscribed(
    fake: FakeTwitch, layer: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await sync_to_async(connect_from_the_setup_page)(fake, monkeypatch)
    await ChannelSettings.objects.acreate(platform="twitch", channel=tw.STREAMER[1])
    clock = ManualClock()
    adapter = TwitchAdapter(layer=layer, clock=clock)
    caplog.set_level(logging.INFO, logger="chatbridge")
    async with running(adapter):
        assert subscribed(fake, tw.OTHER_CHANNEL) == set()

        # Added from the setup page (or the admin): read within seconds, no restart.
        await ChannelSettings.objects.acreate(platform="twitch", channel=tw.OTHER_CHANNEL[1])
        await eventually(
            lambda: subscribed(fake, tw.OTHER_CHANNEL) == {"channel.chat.message", "channel.update"},
            what="the new channel's subscriptions",
        )
        asked = await say(fake, "!ask ça marche ici ?", broadcaster=tw.OTHER_CHANNEL)
        await eventually(lambda: fake.replies_to(asked), what="the reply in the new channel")
        # Its id came from Helix, into its row (an update: no change notice, no reload).
        stored = await sync_to_async(lambda: row(tw.OTHER_CHANNEL[1]).broadcaster_id)()
        assert stored == tw.OTHER_CHANNEL[0]

        # Paused: its subscriptions are deleted at Twitch, and a late line goes unanswered.
        await sync_to_async(set_joined)(tw.OTHER_CHANNEL[1], False)
        await eventually(lambda: subscribed(fake, tw.OTHER_CHANNEL) == set(), what="the unsubscription")
        late = await say(fake, "!ask encore là ?", broadcaster=tw.OTHER_CHANNEL, chatter=("4145995", "v33"))
        # The streamer's channel is still read: once its line is answered, the late one was seen.
        still = await say(fake, "!ask et ici ?", chatter=("4145996", "v34"))
        await eventually(lambda: fake.replies_to(still), what="the reply in the channel still joined")
        assert fake.replies_to(late) == []

        # Joined again, then deleted.
        await sync_to_async(set_joined)(tw.OTHER_CHANNEL[1], True)
        await eventually(
            lambda: "channel.chat.message" in subscribed(fake, tw.OTHER_CHANNEL), what="rejoined"
        )
        await ChannelSettings.objects.filter(channel=tw.OTHER_CHANNEL[1]).adelete()
        await eventually(
            lambda: subscribed(fake, tw.OTHER_CHANNEL) == set(), what="the second unsubscription"
        )
        assert adapter.client is not None
        assert list(adapter.client.channels) == [tw.STREAMER[1]]

    assert unsubscribed(fake, tw.OTHER_CHANNEL) == [
        "channel.chat.message",
        "channel.chat.message",
        "channel.update",
        "channel.update",
    ]
    assert unsubscribed(fake, tw.STREAMER) == []
    assert len(fake.replies_to(asked)) == 1
    assert fake.replies_to(asked)[0]["broadcaster_id"] == tw.OTHER_CHANNEL[0]


async def test_with_no_channel_it_connects_and_waits_and_its_last_channel_leaving_is_no_lost_connection(
    fake: FakeTwitch, layer: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await sync_to_async(connect_from_the_setup_page)(fake, monkeypatch)
    clock = ManualClock()
    adapter = TwitchAdapter(layer=layer, clock=clock, watch_every=0.05)
    caplog.set_level(logging.INFO, logger="chatbridge")
    async with running(adapter):
        assert adapter.status.state == State.CONNECTED
        assert fake.subscriptions == [] and fake.sockets == []

        await ChannelSettings.objects.acreate(platform="twitch", channel=tw.STREAMER[1])
        await eventually(lambda: subscribed(fake, tw.STREAMER), what="the first channel's subscriptions")
        asked = await say(fake, "!ask premier ?")
        await eventually(lambda: fake.replies_to(asked), what="the reply")

        # twitchio closes the websocket whose last subscription is deleted.
        await sync_to_async(set_joined)(tw.STREAMER[1], False)
        await eventually(
            lambda: "no longer reading chat in #streamer" in caplog.text, what="the channel left"
        )
        await eventually(lambda: all(socket.closed for _, socket in fake.sockets), what="the socket closed")
        # Joined again: a new websocket, and chat answered as before.
        await sync_to_async(set_joined)(tw.STREAMER[1], True)
        await eventually(lambda: len(fake.sockets) == 2 and subscribed(fake, tw.STREAMER), what="rejoined")
        clock.advance(60)  # past the channel's cooldown
        again = await say(fake, "!ask re ?", chatter=("4145995", "viewer33"))
        await eventually(lambda: fake.replies_to(again), what="the reply after rejoining")
        assert adapter.status.state == State.CONNECTED

    assert "connection lost" not in caplog.text
    assert "no channel joined yet" in caplog.text


async def test_an_unknown_channel_is_said_once_and_the_others_are_read(
    fake: FakeTwitch, layer: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await sync_to_async(connect_from_the_setup_page)(fake, monkeypatch)
    await ChannelSettings.objects.acreate(platform="twitch", channel="nobody_here")
    await ChannelSettings.objects.acreate(platform="twitch", channel=tw.STREAMER[1])
    adapter = TwitchAdapter(layer=layer, clock=ManualClock())
    caplog.set_level(logging.WARNING, logger="chatbridge")
    async with running(adapter):
        assert adapter.client is not None
        assert list(adapter.client.channels) == [tw.STREAMER[1]]
        # Another row saved: the snapshot reloads and the rows are followed again.
        await ChannelSettings.objects.acreate(platform="twitch", channel=tw.OTHER_CHANNEL[1])
        await eventually(lambda: subscribed(fake, tw.OTHER_CHANNEL), what="the other channel")

    lines = [r.getMessage() for r in caplog.records if "nobody_here" in r.getMessage()]
    assert len(lines) == 1 and "not found" in lines[0]
    assert fake.requests.count("GET /helix/users") == 3  # the bot itself, the start, the new row


async def test_a_channel_twitch_refuses_is_tried_again_and_the_others_are_read(
    fake: FakeTwitch, layer: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await sync_to_async(connect_from_the_setup_page)(fake, monkeypatch)
    await ChannelSettings.objects.acreate(platform="twitch", channel=tw.STREAMER[1])
    fake.refused_subscriptions["channel.chat.message"] = (503, "try later")
    adapter = TwitchAdapter(layer=layer, clock=ManualClock(), watch_every=0.05)
    caplog.set_level(logging.WARNING, logger="chatbridge")
    async with running(adapter):
        assert adapter.client is not None and adapter.client.channels == {}
        del fake.refused_subscriptions["channel.chat.message"]
        await eventually(lambda: subscribed(fake, tw.STREAMER), what="the retried subscription")
        asked = await say(fake, "!ask enfin ?")
        await eventually(lambda: fake.replies_to(asked), what="the reply")

    refusals = [r.getMessage() for r in caplog.records if "cannot read chat" in r.getMessage()]
    assert len(refusals) == 1 and "HTTP 503" in refusals[0]
