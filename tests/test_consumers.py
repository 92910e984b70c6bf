"""The chat worker and the web chat consumer, through a real in-memory channel layer."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import WebsocketCommunicator
from channels_redis.serializers import registry
from django.contrib.auth.models import AnonymousUser, User

from chatbridge import runtime
from chatbridge.adapters.base import LayerClient
from chatbridge.bot import cancel
from chatbridge.consumers import WebChatConsumer
from chatbridge.events import WORKER_CHANNEL, ChatEvent, Reply
from chatbridge.handler import Handler
from chatbridge.runtime import BotRuntime
from chatbridge.worker import build_worker
from llm.cascade.results import TierAttempt
from llm.cascade.service import LLMService
from tests.browser import chromium_page
from tests.conftest import disabled_llm
from tests.fakes.openai_server import FakeOpenAI
from tests.llm_helpers import llm_config, service
from tests.subprocesses import ROOT, bot_env, free_port, manage, wait_for_port

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
    async for layer in running_worker(disabled_llm()):
        yield layer


async def running_worker(llm: LLMService) -> AsyncIterator[InMemoryChannelLayer]:
    layer = get_channel_layer()
    assert isinstance(layer, InMemoryChannelLayer)
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


async def test_an_answer_that_raises_still_gets_an_error_phrase(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REDIS_URL = ""
    llm = disabled_llm()

    async def broken(**kwargs: Any) -> Any:
        raise RuntimeError("a bug in the cascade")

    llm.complete = broken  # type: ignore[method-assign]
    async for layer in running_worker(llm):
        client = LayerClient(layer)
        await client.submit(
            ChatEvent("console", "console", "bob", "!ask ça plante ?", message_id="boom"), ack=True
        )
        event_id, reply = await asyncio.wait_for(client.receive(), 10)

    # The console (and the web chat, and the adapters' guard) get a reply, never an empty one.
    assert event_id == "boom" and reply is not None
    assert (reply.source, reply.fallback_intent) == ("fallback", "ask_error")
    assert reply.text.startswith("@bob ") and len(reply.text) > len("@bob ")
    assert "handler failed on a chat event" in caplog.text


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
    # LLM_MODE=disabled: the ask phrases, no tier tried.
    assert (answer["fallback_intent"], answer["first_token_ms"], answer["tiers"]) == ("ask", None, [])
    assert silence == {
        "event_id": silence["event_id"],
        "reply": None,
        "source": None,
        "intent": None,
        "latency_ms": None,
        "fallback_intent": None,
        "first_token_ms": None,
        "tiers": [],
    }
    assert "error" in error


@pytest.fixture
def no_worker(settings: Any) -> InMemoryChannelLayer:
    """The layer, with every worker down."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    assert isinstance(layer, InMemoryChannelLayer)
    return layer


async def test_the_web_chat_answers_a_line_no_worker_answers_once(
    no_worker: InMemoryChannelLayer, staff: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WebChatConsumer, "guard_after", 0.3)
    communicator = WebsocketCommunicator(WebChatConsumer.as_asgi(), "/ws/chat/")
    communicator.scope["user"] = staff
    assert (await communicator.connect())[0]

    await communicator.send_json_to({"text": "!ask tu es là ?"})
    taken = await asyncio.wait_for(no_worker.receive(WORKER_CHANNEL), 5)  # a worker took it, then died
    guarded = await communicator.receive_json_from(timeout=5)
    assert (guarded["source"], guarded["fallback_intent"]) == ("fallback", "ask_timeout")
    assert guarded["reply"].startswith("@mod ")

    late = Reply("web", "web", "mod", "@mod trop tard", "local", "ask", 1.0)
    await no_worker.send(
        taken["reply_channel"],
        {"type": "chat.reply", "event_id": guarded["event_id"], "reply": late.to_message()},
    )
    assert await communicator.receive_nothing(timeout=0.5)  # never a second reply
    await communicator.disconnect()


async def test_the_web_chat_answers_at_once_when_the_layer_refuses(
    settings: Any, staff: User, caplog: pytest.LogCaptureFixture
) -> None:
    # Redis down: a layer on a port where nothing listens. The page stays open and the
    # line gets its phrase at once; a line of ordinary chat gets its empty reply.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]},
        }
    }
    communicator = WebsocketCommunicator(WebChatConsumer.as_asgi(), "/ws/chat/")
    communicator.scope["user"] = staff
    assert (await communicator.connect())[0]

    await communicator.send_json_to({"text": "salut @serdabot"})
    mention = await communicator.receive_json_from(timeout=10)
    await communicator.send_json_to({"text": "juste du chat"})
    silence = await communicator.receive_json_from(timeout=10)
    await communicator.disconnect()

    assert (mention["source"], mention["fallback_intent"]) == ("fallback", "chill")
    assert silence["reply"] is None
    assert not [r for r in caplog.records if r.exc_info]  # no "Exception inside application"


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


@pytest.mark.parametrize("serializer", ["msgpack", "json"])
def test_a_reply_crosses_the_redis_layer_serializers_intact(serializer: str) -> None:
    tiers = (
        TierAttempt("local", "failed", "HTTP500", latency_ms=12.5).as_dict(),
        TierAttempt("openai", "skipped", "CircuitOpen").as_dict(),
    )
    reply = Reply(
        "twitch",
        "streamer",
        "alice",
        "@alice Oups.",
        "fallback",
        "ask",
        15.0,
        fallback_intent="ask_error",
        tiers=tiers,
    )
    codec = registry.get_serializer(serializer)

    back = Reply.from_message(codec.deserialize(codec.serialize(reply.to_message())))

    assert back == reply
    assert back.tiers == tiers


def test_a_reply_from_a_sender_without_the_new_fields_still_reads() -> None:
    reply = Reply.from_message(
        {"platform": "web", "channel": "web", "user": "bob", "text": "@bob salut", "source": "local"}
        | {"intent": "chill", "latency_ms": 3.0, "tiers": None}
    )

    assert (reply.fallback_intent, reply.first_token_ms, reply.tiers) == (None, None, ())


@pytest.fixture
async def failing_worker(settings: Any) -> AsyncIterator[FakeOpenAI]:
    """A worker whose LLM answers every completion with a server error."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REDIS_URL = ""
    with FakeOpenAI() as model:
        model.set_fault("http500")
        async for _ in running_worker(service(llm_config(model.url, breaker_failures=10))):
            yield model


async def test_the_web_chat_says_which_phrase_set_answered(failing_worker: FakeOpenAI, staff: User) -> None:
    communicator = WebsocketCommunicator(WebChatConsumer.as_asgi(), "/ws/chat/")
    communicator.scope["user"] = staff
    assert (await communicator.connect())[0]

    await communicator.send_json_to({"text": "!ask ça marche ?"})
    ask = await communicator.receive_json_from(timeout=10)
    await communicator.send_json_to({"text": "salut serdabot"})
    mention = await communicator.receive_json_from(timeout=10)
    failing_worker.clear()
    await communicator.send_json_to({"text": "!ask et maintenant ?"})
    answered = await communicator.receive_json_from(timeout=10)
    await communicator.disconnect()

    assert (ask["source"], ask["intent"], ask["fallback_intent"]) == ("fallback", "ask", "ask_error")
    assert (mention["intent"], mention["fallback_intent"]) == ("chill", "chill")
    for failed in (ask, mention):
        assert failed["first_token_ms"] is None
        assert [(t["tier"], t["outcome"], t["error"]) for t in failed["tiers"]] == [
            ("local", "failed", "HTTP500")
        ]
    assert (answered["source"], answered["fallback_intent"]) == ("local", None)
    assert answered["first_token_ms"] is not None
    assert [(t["tier"], t["outcome"]) for t in answered["tiers"]] == [("local", "answered")]


# -- the page, in a real browser -------------------------------------------------------

PASSWORD = "a-long-test-password-7"


@pytest.fixture
def chat_server(local_dir: Path) -> Iterator[tuple[str, FakeOpenAI]]:
    """`runbot` serving the web chat, its LLM a fake one answering every completion with a 500."""
    with FakeOpenAI() as model:
        model.set_fault("http500")
        env = bot_env(
            local_dir,
            DJANGO_SUPERUSER_PASSWORD=PASSWORD,
            LLM_ENDPOINT=model.url,
            LLM_MODE="enabled",
            LLM_BREAKER_FAILURES="10",
        )
        made = manage(
            env, "createsuperuser", "--noinput", "--username", "streamer", "--email", "s@example.com"
        )
        assert made.returncode == 0, made.stderr
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "runbot", "--port", str(port), "--platform", "web"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            wait_for_port(port, proc=proc)
            yield f"http://127.0.0.1:{port}", model
        finally:
            proc.terminate()
            proc.wait(20)


@pytest.mark.browser
def test_the_web_chat_page_shows_the_phrase_set_timings_and_tiers(
    chat_server: tuple[str, FakeOpenAI],
) -> None:
    from playwright.sync_api import expect

    url, model = chat_server
    with chromium_page(locale="en-US") as page:  # the assertions are in English
        page.goto(url + "/chat/")
        page.fill("#id_username", "streamer")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        expect(page.locator("#status")).to_have_text("connected", timeout=15_000)
        replies = page.locator("#log li.bot")

        def say(text: str, count: int) -> Any:
            page.fill("#text", text)
            page.click("#say button")
            expect(replies).to_have_count(count, timeout=15_000)
            return replies.nth(count - 1)

        ask = say("!ask c'est quoi un GPU ?", 1)
        mention = say("salut serdabot", 2)
        model.clear()
        answered = say("!ask et là ?", 3)

        expect(ask.locator(".badge.intent")).to_have_text("ask_error")
        expect(ask.locator(".detail")).to_contain_text("tiers: local failed HTTP500")
        expect(mention.locator(".badge.intent")).to_have_text("chill")
        expect(answered.locator(".badge.local")).to_have_text("local")
        expect(answered.locator(".badge.intent")).to_have_count(0)
        expect(answered.locator(".detail")).to_contain_text("first token")
        expect(answered.locator(".detail")).to_contain_text("tiers: local answered")
