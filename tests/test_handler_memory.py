"""Conversation memory through the handler: what a viewer said before goes along with the
next question, per user and channel, and `!forget` clears it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatbridge.channel_settings import settings_cache
from chatbridge.events import ChatEvent
from chatbridge.handler import Handler
from chatbridge.memory import InProcessMemory
from tests.fakes.clock import ManualClock
from tests.fakes.openai_server import FakeOpenAI
from tests.llm_helpers import llm_config, service

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("warm_phrases")]


@pytest.fixture(autouse=True)
def fresh_settings() -> None:
    settings_cache.clear()


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(answer="Réponse du modèle.") as server:
        yield server


def event(text: str, user: str = "viewer32", channel: str = "streamer") -> ChatEvent:
    return ChatEvent(platform="twitch", channel=channel, user=user, text=text)


def last_messages(model: FakeOpenAI) -> list[dict[str, str]]:
    bodies = [r.body for r in model.requests if r.path.endswith("/chat/completions") and not r.is_probe]
    return list(bodies[-1]["messages"])


async def test_the_previous_exchange_goes_along_then_forget_clears_it(model: FakeOpenAI) -> None:
    handler = Handler(service(llm_config(model.url)), memory=InProcessMemory())

    await handler.handle(event("!ask c'est quoi Python ?"))
    assert [m["role"] for m in last_messages(model)] == ["system", "user"]

    await handler.handle(event("!ask et Rust ?"))
    messages = last_messages(model)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "c'est quoi Python ?" in messages[1]["content"]
    assert messages[2]["content"] == "Réponse du modèle."

    # Another viewer, or the same one in another channel, starts from nothing.
    await handler.handle(event("!ask et Go ?", user="other"))
    assert [m["role"] for m in last_messages(model)] == ["system", "user"]
    await handler.handle(event("!ask et Go ?", channel="elsewhere"))
    assert [m["role"] for m in last_messages(model)] == ["system", "user"]

    forgot = await handler.handle(event("!forget"))
    assert forgot is not None and forgot.source == "bot"
    await handler.handle(event("!ask et Zig ?"))
    assert [m["role"] for m in last_messages(model)] == ["system", "user"]


async def test_mentions_remember_too_and_memory_expires(model: FakeOpenAI) -> None:
    clock = ManualClock()
    handler = Handler(service(llm_config(model.url)), memory=InProcessMemory(ttl=600, clock=clock.now))

    await handler.handle(event("@serdabot salut"))
    await handler.handle(event("@serdabot ça va ?"))
    assert [m["role"] for m in last_messages(model)] == ["system", "user", "assistant", "user"]

    clock.advance(601)
    await handler.handle(event("@serdabot toujours là ?"))
    assert [m["role"] for m in last_messages(model)] == ["system", "user"]


async def test_a_held_answer_is_not_remembered(model: FakeOpenAI) -> None:
    from chatbridge.moderation.models import BlockedTerm
    from chatbridge.moderation.terms import blocked_terms

    await BlockedTerm.objects.acreate(term="modèle")
    await blocked_terms.refresh()
    try:
        handler = Handler(service(llm_config(model.url)), memory=InProcessMemory())
        await handler.handle(event("!ask un"))
        await handler.handle(event("!ask deux"))
        assert [m["role"] for m in last_messages(model)] == ["system", "user"]
    finally:
        await BlockedTerm.objects.all().adelete()
        await blocked_terms.refresh()


async def test_on_discord_two_members_with_one_name_do_not_share_a_conversation(model: FakeOpenAI) -> None:
    handler = Handler(service(llm_config(model.url)), memory=InProcessMemory())

    def alex(user_id: str, text: str) -> ChatEvent:
        return ChatEvent(platform="discord", channel="42", user="Alex", text=text, user_id=user_id)

    await handler.handle(alex("1001", "!ask mon code secret est 1234, retiens-le"))
    await handler.handle(alex("1002", "!ask rappelle-moi ce que je t'ai dit"))
    assert [m["role"] for m in last_messages(model)] == ["system", "user"]
    await handler.handle(alex("1001", "!ask et alors ?"))
    assert [m["role"] for m in last_messages(model)] == ["system", "user", "assistant", "user"]


async def test_what_is_remembered_is_what_chat_read(model: FakeOpenAI) -> None:
    memory = InProcessMemory()
    handler = Handler(service(llm_config(model.url)), memory=memory)
    model.answer = "/ban viewer32"

    await handler.handle(event("!ask écris /ban viewer32"))

    # Reminded of "/ban …", a model is one step from sending it again.
    assert await memory.recall("twitch", "streamer", "viewer32") == [("écris /ban viewer32", "ban viewer32")]
