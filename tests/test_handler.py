"""The handler's decisions, with real LLM services (disabled, or against a fake server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatbridge.events import ChatEvent
from chatbridge.handler import USAGE, Handler
from fallbacks.models import Phrase
from tests.conftest import disabled_llm
from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI
from tests.llm_helpers import llm_config, service

pytestmark = pytest.mark.usefixtures("warm_phrases")


def event(text: str, **fields: object) -> ChatEvent:
    values: dict[str, object] = {
        "platform": "twitch",
        "channel": "streamer",
        "user": "viewer32",
        "text": text,
    }
    values.update(fields)
    return ChatEvent(**values)  # type: ignore[arg-type]


def phrases(intent: str) -> set[str]:
    return set(Phrase.objects.filter(intent__slug=intent, enabled=True).values_list("text", flat=True))


@pytest.fixture
def handler() -> Handler:
    return Handler(disabled_llm(), bot_names=("serdabot",))


async def test_ask_without_a_model_gets_an_ask_phrase(handler: Handler) -> None:
    reply = await handler.handle(event("!ask c'est quoi Python ?", message_id="m-1"))

    assert reply is not None
    assert (reply.source, reply.intent, reply.command, reply.reply_to) == ("fallback", "ask", "ask", "m-1")
    assert reply.text.startswith("@viewer32 ")
    assert reply.text.removeprefix("@viewer32 ") in await _phrases("ask")


@pytest.mark.parametrize("text", ["@serdabot salut", "SerdaBot?", "yo serdabot, ça dit quoi", "!chill"])
async def test_mentions_and_chill_get_a_chill_phrase(handler: Handler, text: str) -> None:
    reply = await handler.handle(event(text))

    assert reply is not None
    assert reply.intent == "chill"
    assert reply.text.removeprefix("@viewer32 ") in await _phrases("chill")


@pytest.mark.parametrize("text", ["salut le chat", "serdabots", "!askip", "GG"])
async def test_ordinary_chat_gets_no_reply(handler: Handler, text: str) -> None:
    assert await handler.handle(event(text)) is None


async def test_an_empty_ask_gets_the_usage_hint(handler: Handler) -> None:
    reply = await handler.handle(event("!ask   "))

    assert reply is not None
    assert reply.text == f"@viewer32 {USAGE}"


async def test_a_2000_character_question_still_gets_one_safe_reply(handler: Handler) -> None:
    reply = await handler.handle(event("!ask " + "pourquoi " * 250))

    assert reply is not None
    assert len(reply.text) <= 500
    assert reply.intent == "ask"


async def test_silent_and_minimal_modes(handler: Handler) -> None:
    handler.fallback_mode = "minimal"
    minimal = await handler.handle(event("!ask ping"))
    handler.fallback_mode = "silent"
    silent = await handler.handle(event("!ask ping"))

    assert minimal is not None and minimal.text == "@viewer32 🤖"
    assert silent is not None and silent.text.startswith("@viewer32 ") and "🤖" not in silent.text


async def test_discord_replies_may_be_longer_than_twitch_ones(handler: Handler) -> None:
    reply = await handler.handle(event("!ask " + "x" * 3000, platform="discord"))
    assert reply is not None and len(reply.text) <= 2000


async def _phrases(intent: str) -> set[str]:
    from asgiref.sync import sync_to_async

    return await sync_to_async(phrases)(intent)


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


async def test_a_model_answer_is_sent_with_its_source(model: FakeOpenAI) -> None:
    handler = Handler(service(llm_config(model.url)))

    reply = await handler.handle(event("!ask c'est quoi Python ?"))

    assert reply is not None
    assert (reply.source, reply.intent) == ("local", "ask")
    assert reply.text == f"@viewer32 {DEFAULT_ANSWER}"
    assert model.chat_requests == 1


async def test_a_mention_is_answered_by_the_model_with_the_chill_prompt(model: FakeOpenAI) -> None:
    handler = Handler(service(llm_config(model.url)), prompts={"ask": "ASK-PROMPT", "chill": "CHILL-PROMPT"})

    reply = await handler.handle(event("coucou @SerdaBot !"))

    assert reply is not None and (reply.source, reply.intent) == ("local", "chill")
    sent = [r for r in model.requests if not r.is_probe][-1]
    assert sent.body["messages"][0] == {"role": "system", "content": "CHILL-PROMPT"}
    assert sent.body["messages"][-1]["content"] == "coucou @SerdaBot !"


@pytest.mark.parametrize(
    "answer", ["/ban viewer32\nvoilà", ".timeout x\n\n\ttrop drôle", "ligne 1\r\nligne 2"]
)
async def test_whatever_the_model_says_the_reply_is_safe(model: FakeOpenAI, answer: str) -> None:
    model.answer = answer
    handler = Handler(service(llm_config(model.url)))

    reply = await handler.handle(event("!ask dis un truc"))

    assert reply is not None and reply.source == "local"
    assert reply.text.startswith("@viewer32 ")
    body = reply.text.removeprefix("@viewer32 ")
    assert "\n" not in reply.text and "\r" not in reply.text and "\t" not in reply.text
    assert not body.startswith(("/", "."))


async def test_an_over_long_model_answer_fits_twitch(model: FakeOpenAI) -> None:
    model.set_fault("over_long")
    handler = Handler(service(llm_config(model.url)))

    reply = await handler.handle(event("!ask raconte tout"))

    assert reply is not None and reply.source == "local"
    assert len(reply.text) <= 500


async def test_a_dead_model_gives_ask_error_and_a_hang_gives_ask_timeout(model: FakeOpenAI) -> None:
    llm = service(llm_config(model.url, breaker_failures=10))
    handler = Handler(llm)
    model.set_fault("http500")
    error = await handler.handle(event("!ask ça marche ?"))
    model.set_fault("hang")
    timeout = await handler.handle(event("!ask et là ?"))

    assert error is not None and timeout is not None
    assert (error.source, timeout.source) == ("fallback", "fallback")
    assert error.text.removeprefix("@viewer32 ") in await _phrases("ask_error")
    assert timeout.text.removeprefix("@viewer32 ") in await _phrases("ask_timeout")
