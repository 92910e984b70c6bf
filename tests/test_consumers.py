"""The chat worker and the web chat consumer, through a real in-memory channel layer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, User

from chatbridge import runtime
from chatbridge.adapters.base import LayerClient
from chatbridge.bot import cancel
from chatbridge.consumers import WebChatConsumer
from chatbridge.events import ChatEvent
from chatbridge.handler import Handler
from chatbridge.runtime import BotRuntime
from chatbridge.worker import build_worker
from tests.conftest import disabled_llm

pytestmark = pytest.mark.usefixtures("warm_phrases")


@pytest.fixture
async def worker_layer(settings: Any) -> AsyncIterator[InMemoryChannelLayer]:
    """A running worker on an in-memory layer, with a bot runtime installed.

    The worker's logic is what is tested here, on every configuration; the same path over
    Redis, across processes, is tests/test_multiprocess.py's.
    """
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}
    }
    settings.REDIS_URL = ""  # claims in memory too
    layer = get_channel_layer()
    assert isinstance(layer, InMemoryChannelLayer)
    llm = disabled_llm()
    runtime.install(BotRuntime(llm, Handler(llm)))
    task = asyncio.create_task(build_worker().arun())
    yield layer
    await cancel([task])
    runtime.install(None)


async def test_the_worker_answers_only_what_needs_an_answer(worker_layer: InMemoryChannelLayer) -> None:
    client = LayerClient(worker_layer)
    for i in range(5):
        await client.submit(ChatEvent("twitch", "streamer", f"u{i}", "ordinary chat", message_id=f"chat-{i}"))
    await client.submit(ChatEvent("twitch", "streamer", "alice", "!ask quoi de neuf ?", message_id="ask-1"))

    event_id, reply = await asyncio.wait_for(client.receive(), 10)

    # Ordinary chat sent nothing back: the first message on the reply channel is the answer.
    assert event_id == "ask-1"
    assert reply is not None
    assert reply.text.startswith("@alice ")
    assert (reply.platform, reply.channel, reply.reply_to) == ("twitch", "streamer", "ask-1")


async def test_an_acknowledged_event_gets_an_empty_reply(worker_layer: InMemoryChannelLayer) -> None:
    client = LayerClient(worker_layer)
    await client.submit(ChatEvent("console", "console", "bob", "hello", message_id="e-1"), ack=True)

    assert await asyncio.wait_for(client.receive(), 10) == ("e-1", None)


async def test_the_worker_answers_many_events_at_once(worker_layer: InMemoryChannelLayer) -> None:
    client = LayerClient(worker_layer)
    for i in range(300):
        await client.submit(ChatEvent("twitch", "streamer", f"u{i}", "!chill", message_id=str(i)))

    ids = {(await asyncio.wait_for(client.receive(), 10))[0] for _ in range(300)}

    assert ids == {str(i) for i in range(300)}


@pytest.fixture
def staff(db: None) -> User:
    return User.objects.create_user("mod", password="x-long-password", is_staff=True)


async def test_the_web_chat_talks_to_the_bot(worker_layer: InMemoryChannelLayer, staff: User) -> None:
    communicator = WebsocketCommunicator(WebChatConsumer.as_asgi(), "/ws/chat/")
    communicator.scope["user"] = staff
    connected, _ = await communicator.connect()
    assert connected

    await communicator.send_json_to({"text": "!ask c'est quoi un websocket ?"})
    answer = await communicator.receive_json_from(timeout=10)
    await communicator.send_json_to({"text": "juste du chat"})
    silence = await communicator.receive_json_from(timeout=10)
    await communicator.send_json_to({"nope": 1})
    error = await communicator.receive_json_from(timeout=10)
    await communicator.disconnect()

    assert answer["source"] == "fallback" and answer["intent"] == "ask"
    assert answer["reply"].startswith("@mod ")
    assert silence["reply"] is None
    assert "error" in error


@pytest.fixture
def viewer(db: None) -> User:
    return User.objects.create_user("viewer", password="x-long-password")


@pytest.mark.parametrize("who", ["anonymous", "not staff"])
async def test_the_web_chat_refuses_non_staff(viewer: User, who: str) -> None:
    user = AnonymousUser() if who == "anonymous" else viewer
    communicator = WebsocketCommunicator(WebChatConsumer.as_asgi(), "/ws/chat/")
    communicator.scope["user"] = user

    connected, code = await communicator.connect()
    # Let the refused consumer finish, so no layer read is left pending at teardown.
    await communicator.disconnect()

    assert not connected
    assert code == 4403


async def test_a_message_delivered_twice_is_answered_once(worker_layer: InMemoryChannelLayer) -> None:
    client = LayerClient(worker_layer)
    twice = ChatEvent("twitch", "streamer", "alice", "!ask encore ?", message_id="dup-1")
    await client.submit(twice)
    await client.submit(twice)
    await client.submit(ChatEvent("twitch", "streamer", "bob", "!chill", message_id="other"))

    first = await asyncio.wait_for(client.receive(), 10)
    second = await asyncio.wait_for(client.receive(), 10)

    assert sorted([first[0], second[0]]) == ["dup-1", "other"]
