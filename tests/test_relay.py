"""The relay's promise: one reply per message it decided to answer, whatever the workers do.

A real channel layer carries the events; the "worker" is this test reading the workers'
channel and answering (or not) through the same layer, as a worker process would. The
platform's send is the network edge: a recorder stands in for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer

from chatbridge.adapters.outbound import Outgoing
from chatbridge.adapters.recent import RecentIds
from chatbridge.adapters.relay import Relay
from chatbridge.adapters.status import AdapterStatus
from chatbridge.channel_settings import ChannelSettingsCache
from chatbridge.config import RateLimit
from chatbridge.cooldowns import Cooldowns
from chatbridge.events import WORKER_CHANNEL, ChatEvent, Reply
from chatbridge.models import ChannelSettings
from fallbacks import services as fallbacks
from fallbacks.models import Intent, Phrase
from tests.adapter_support import eventually
from tests.subprocesses import free_port

pytestmark = pytest.mark.django_db(transaction=True)

CHANNEL = "streamer"
FAST = RateLimit(100, 30.0)


class Chat:
    """The platform's side: what the relay sent."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def send(self, message: Outgoing) -> None:
        self.sent.append(message)

    def replies_to(self, message_id: str) -> list[Outgoing]:
        return [m for m in self.sent if m.reply_to == message_id]


def event(n: int, text: str = "!ask c'est quoi un tore ?", *, user: str = "") -> ChatEvent:
    user = user or f"viewer{n}"
    return ChatEvent(
        platform="twitch",
        channel=CHANNEL,
        user=user,
        text=text,
        message_id=f"msg-{n}",
        user_id=f"id-{user}",
        channel_id="1001",
    )


# This test's own phrase sets, so a reply's text tells which set it came from.
PHRASES = {
    "ask_timeout": "Mon cerveau a dépassé le timeout, reviens plus tard ⌛",
    "chill": "Je suis là, en mode économie d'énergie 🔋",
}


def seed_phrases() -> None:
    for slug, text in PHRASES.items():
        intent, _ = Intent.objects.get_or_create(slug=slug)
        Phrase.objects.filter(intent=intent).delete()
        Phrase.objects.create(intent=intent, text=text)


async def settings_with(**values: Any) -> ChannelSettingsCache:
    cache = ChannelSettingsCache()
    if values:
        await sync_to_async(ChannelSettings.objects.update_or_create)(
            platform="twitch", channel=CHANNEL, defaults=values
        )
    await sync_to_async(cache.load)()
    return cache


@pytest.fixture
async def layer() -> AsyncIterator[InMemoryChannelLayer]:
    await sync_to_async(seed_phrases)()
    await sync_to_async(fallbacks.warm)()
    yield InMemoryChannelLayer()


async def relay_on(
    layer: Any,
    chat: Chat,
    *,
    guard_after: float = 60.0,
    rate: RateLimit = FAST,
    cache: ChannelSettingsCache | None = None,
    recent_ids: RecentIds | None = None,
) -> tuple[Relay, asyncio.Task[None]]:
    relay = Relay(
        "twitch",
        send=chat.send,
        rate=lambda channel: rate,
        status=AdapterStatus("twitch"),
        layer=layer,
        settings=cache or await settings_with(),
        cooldowns=Cooldowns(),
        bot_names=("serdabot",),
        guard_after=guard_after,
        fallback_mode="fun",
        recent_ids=recent_ids,
    )
    return relay, asyncio.create_task(relay.run())


async def take_event(layer: Any) -> dict[str, Any]:
    """What a worker reads: the next event handed to the workers."""
    return await asyncio.wait_for(layer.receive(WORKER_CHANNEL), 5)


async def answer(layer: Any, message: dict[str, Any], text: str) -> None:
    """A worker's reply to `message`, through the layer."""
    chat_event = ChatEvent.from_message(message["event"])
    reply = Reply(
        platform=chat_event.platform,
        channel=chat_event.channel,
        user=chat_event.user,
        text=text,
        source="local",
        intent="ask",
        latency_ms=1.0,
        reply_to=chat_event.message_id,
        channel_id=chat_event.channel_id,
        command="ask",
    )
    await layer.send(
        message["reply_channel"],
        {"type": "chat.reply", "event_id": chat_event.message_id, "reply": reply.to_message()},
    )


async def stop(relay: Relay, task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await relay.close()


async def test_an_event_no_worker_answers_gets_one_fallback_and_the_late_reply_is_dropped(
    layer: InMemoryChannelLayer,
) -> None:
    chat = Chat()
    relay, task = await relay_on(layer, chat, guard_after=0.3)
    try:
        assert await relay.incoming(event(1))
        handed = await take_event(layer)  # a worker took it... and died before answering
        await eventually(lambda: chat.sent, "the guard's reply")
        [reply] = chat.replies_to("msg-1")
        assert reply.text.startswith("@viewer1 ")
        assert reply.text == f"@viewer1 {PHRASES['ask_timeout']}"
        assert relay.guarded == 1

        await answer(layer, handed, "Un donut, mathématiquement parlant.")
        await eventually(lambda: relay.late == 1, "the late reply to be counted")
        assert len(chat.replies_to("msg-1")) == 1  # never a second reply
        assert relay.pending == 0
    finally:
        await stop(relay, task)


async def test_a_mention_the_workers_lost_gets_a_chill_phrase(layer: InMemoryChannelLayer) -> None:
    chat = Chat()
    relay, task = await relay_on(layer, chat, guard_after=0.2)
    try:
        assert await relay.incoming(event(2, "salut @serdabot ça va ?"))
        await eventually(lambda: chat.sent, "the guard's reply")
        assert chat.sent[0].text == f"@viewer2 {PHRASES['chill']}"
    finally:
        await stop(relay, task)


async def test_a_reply_in_time_is_the_only_reply(layer: InMemoryChannelLayer) -> None:
    chat = Chat()
    relay, task = await relay_on(layer, chat, guard_after=0.5)
    try:
        assert await relay.incoming(event(3))
        await answer(layer, await take_event(layer), "@viewer3 Un donut.")
        await eventually(lambda: chat.sent, "the worker's reply")
        await asyncio.sleep(0.8)  # past the guard: it must not answer a second time
        assert [m.text for m in chat.sent] == ["@viewer3 Un donut."]
        assert relay.guarded == 0 and relay.late == 0
    finally:
        await stop(relay, task)


async def test_a_message_delivered_twice_gets_one_reply(layer: InMemoryChannelLayer) -> None:
    # EventSub may deliver a message again after a reconnection. A moderator bypasses the
    # cooldowns, so only the relay's memory of the ids it took stands between the second
    # delivery and a second reply (from the guard: the worker skips a claimed id).
    chat = Chat()
    relay, task = await relay_on(layer, chat, guard_after=0.3)
    moderator = dataclasses.replace(event(5), is_moderator=True)
    try:
        assert await relay.incoming(moderator)
        await answer(layer, await take_event(layer), "@viewer5 Un donut.")
        await eventually(lambda: chat.sent, "the worker's reply")
        assert not await relay.incoming(moderator)  # redelivered after the reply
        await asyncio.sleep(0.6)  # past the guard
        assert [m.text for m in chat.sent] == ["@viewer5 Un donut."]
        assert relay.duplicates == 1 and relay.guarded == 0
        assert await relay.incoming(dataclasses.replace(moderator, message_id="msg-6"))
    finally:
        await stop(relay, task)
    # The adapter reconnects with a new relay, and the platform delivers it once more.
    again, task = await relay_on(layer, chat, guard_after=0.3, recent_ids=relay.recent_ids)
    try:
        assert not await again.incoming(moderator)
        await asyncio.sleep(0.6)
        assert len(chat.replies_to("msg-5")) == 1
    finally:
        await stop(again, task)


async def test_an_event_the_layer_refuses_is_answered_at_once(
    layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    # A real Redis layer on a port where nothing listens: every send is refused.
    down = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{free_port()}/0"])
    chat = Chat()
    relay, task = await relay_on(down, chat, guard_after=60.0, cache=await settings_with(channel_cooldown=0))
    caplog.set_level(logging.WARNING, "chatbridge.adapters")
    try:
        for n in range(3):
            assert not await relay.incoming(event(10 + n))
        await eventually(lambda: len(chat.sent) == 3, "three replies from the adapter")
        assert sorted(m.reply_to for m in chat.sent) == ["msg-10", "msg-11", "msg-12"]
        assert relay.pending == 0
        unreachable = [r for r in caplog.records if "cannot reach the workers" in r.getMessage()]
        assert len(unreachable) == 1  # one line for the outage, not one per message
    finally:
        await stop(relay, task)


async def test_several_viewers_ask_at_once_and_the_channel_cooldown_counts_sent_replies(
    layer: InMemoryChannelLayer,
) -> None:
    chat = Chat()
    relay, task = await relay_on(
        layer, chat, cache=await settings_with(channel_cooldown=30, user_cooldown=30)
    )
    try:
        # Three viewers in one channel: all three in flight at once, none answered yet.
        assert all([await relay.incoming(event(n)) for n in range(20, 23)])
        assert relay.pending == 3
        first = await take_event(layer)
        await answer(layer, first, "@viewer20 réponse")
        await eventually(lambda: chat.sent, "the first reply")
        # A reply went out: now the channel's cooldown turns the next viewer away.
        assert not await relay.incoming(event(23))
    finally:
        await stop(relay, task)


async def test_the_reservation_ends_with_the_guards_reply(layer: InMemoryChannelLayer) -> None:
    chat = Chat()
    cache = await settings_with(channel_cooldown=0, user_cooldown=1)
    relay, task = await relay_on(layer, chat, guard_after=0.2, cache=cache)
    try:
        assert await relay.incoming(event(30, user="alice"))
        assert not await relay.incoming(event(31, user="alice"))  # her first !ask is in flight
        await eventually(lambda: chat.sent, "the guard's reply")
        await asyncio.sleep(1.2)  # her 1 s cooldown, from the reply actually sent
        assert await relay.incoming(event(32, user="alice"))
    finally:
        await stop(relay, task)


async def test_shutdown_waits_for_replies_then_sends_what_the_rate_allows(
    layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    chat = Chat()
    relay, task = await relay_on(layer, chat, rate=RateLimit(1, 30.0))
    caplog.set_level(logging.WARNING, "chatbridge.outbound")
    loop = asyncio.get_running_loop()
    try:
        for n in range(40, 43):
            assert await relay.incoming(event(n, user=f"mod{n}"))
        relay.stop_taking()
        assert not await relay.incoming(event(43))  # no new events once stopping
        assert relay.pending == 3
        for _ in range(2):  # two answers come back during the grace; the third never does
            await answer(layer, await take_event(layer), "@mod réponse")
        left = await relay.drain(loop.time() + 1.0)
        # One reply fits the rate limit; the other two (one answered by the relay itself) wait.
        assert len(chat.sent) == 1
        assert left == 2
        assert relay.guarded == 1 and relay.pending == 0
    finally:
        await stop(relay, task)
    assert any("2 queued replies not sent" in r.getMessage() for r in caplog.records)


async def test_replies_are_answered_before_the_end_of_the_grace_and_sent_within_it(
    layer: InMemoryChannelLayer,
) -> None:
    chat = Chat()
    relay, task = await relay_on(layer, chat)
    loop = asyncio.get_running_loop()
    try:
        assert await relay.incoming(event(50))
        await take_event(layer)  # a worker that will not answer within the grace
        relay.stop_taking()
        start = loop.time()
        left = await relay.drain(start + 5.0, answer_by=start + 0.3)
        # Answered from the relay's phrases at answer_by, and sent well before the grace ends.
        assert left == 0
        assert [m.text for m in chat.replies_to("msg-50")] == [f"@viewer50 {PHRASES['ask_timeout']}"]
        assert loop.time() - start < 2.0
    finally:
        await stop(relay, task)


async def test_a_relay_closed_for_a_reconnection_answers_what_it_owes_first(
    layer: InMemoryChannelLayer,
) -> None:
    chat = Chat()
    relay, task = await relay_on(layer, chat)
    try:
        for n in (60, 61):
            assert await relay.incoming(event(n))
        in_time, lost = await take_event(layer), await take_event(layer)
        assert lost["event"]["message_id"] == "msg-61"
        settling = asyncio.create_task(relay.settle())
        await answer(layer, in_time, "Réponse du worker, juste avant la reconnexion.")
        await settling
        # The worker's reply that came in time is sent; the other gets the relay's phrase.
        in_time_text = "Réponse du worker, juste avant la reconnexion."
        assert [m.text for m in chat.replies_to("msg-60")] == [in_time_text]
        assert [m.text for m in chat.replies_to("msg-61")] == [f"@viewer61 {PHRASES['ask_timeout']}"]
        assert relay.pending == 0
    finally:
        await stop(relay, task)
    assert not await relay.incoming(event(62))  # closed: nothing new is taken
    assert relay.pending == 0


@pytest.mark.parametrize("channel_mode", ["", "minimal"])
async def test_two_workers_picking_one_phrase_in_a_row_send_two_different_ones(
    layer: InMemoryChannelLayer, channel_mode: str
) -> None:
    """`!duo`, a custom command: its phrases are its answer, in a "minimal" channel too."""

    def add_duo() -> None:
        duo, _ = Intent.objects.get_or_create(slug="duo")
        Phrase.objects.filter(intent=duo).delete()
        Phrase.objects.create(intent=duo, text="Phrase A pour {user}")
        Phrase.objects.create(intent=duo, text="Phrase B pour {user}")
        fallbacks.warm()

    await sync_to_async(add_duo)()
    chat = Chat()
    cache = await settings_with(channel_cooldown=0, fallback_mode=channel_mode)
    relay, task = await relay_on(layer, chat, cache=cache)

    async def worker_says(message: dict[str, Any], phrase: str) -> None:
        # Each worker remembers only its own picks: both picked "A" for this channel.
        handed = ChatEvent.from_message(message["event"])
        reply = Reply(
            platform="twitch",
            channel=handed.channel,
            user=handed.user,
            text=f"@{handed.user} {phrase.replace('{user}', handed.user)}",
            source="fallback",
            intent="duo",
            latency_ms=1.0,
            reply_to=handed.message_id,
            channel_id=handed.channel_id,
            command="duo",
            fallback_intent="duo",
            phrase=phrase,
        )
        await layer.send(
            message["reply_channel"],
            {"type": "chat.reply", "event_id": handed.message_id, "reply": reply.to_message()},
        )

    try:
        for n in (10, 11, 12):
            assert await relay.incoming(event(n, "!duo"))
            await worker_says(await take_event(layer), "Phrase A pour {user}")
            await eventually(lambda n=n: chat.replies_to(f"msg-{n}"), "the reply")  # type: ignore[misc]
        assert [m.text for m in chat.sent] == [
            "@viewer10 Phrase A pour viewer10",
            "@viewer11 Phrase B pour viewer11",  # the second "A" in a row became "B"
            "@viewer12 Phrase A pour viewer12",
        ]
    finally:
        await stop(relay, task)


async def test_the_adapter_is_told_of_an_event_the_workers_leave_unanswered(
    layer: InMemoryChannelLayer,
) -> None:
    chat = Chat()
    relay, task = await relay_on(layer, chat)
    left: list[str] = []
    relay.unanswered = lambda event: left.append(event.message_id)
    try:
        assert await relay.incoming(event(20))
        handed = await take_event(layer)
        # The worker's caches say "not a command here" (`!serdabot off` just reached it).
        await layer.send(handed["reply_channel"], {"type": "chat.reply", "event_id": "msg-20", "reply": None})
        await eventually(lambda: left, "the adapter to be told")
        assert left == ["msg-20"] and chat.sent == [] and relay.pending == 0
    finally:
        await stop(relay, task)
