"""The handler's decisions, with real LLM services (disabled, or against a fake server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatbridge.commands import Command
from chatbridge.handler import USAGE, USAGE_INTENT, Handler
from fallbacks import services
from fallbacks.models import Phrase
from llm.cascade.results import CascadeResult, TierAttempt
from tests.conftest import disabled_llm
from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI
from tests.handler_support import event
from tests.llm_helpers import llm_config, service

pytestmark = pytest.mark.usefixtures("warm_phrases")


def phrases(intent: str) -> set[str]:
    return set(Phrase.objects.filter(intent__slug=intent, enabled=True).values_list("text", flat=True))


@pytest.fixture
def handler() -> Handler:
    return Handler(disabled_llm(), bot_names=("serdabot",))


async def test_ask_without_a_model_gets_an_ask_phrase(handler: Handler) -> None:
    reply = await handler.handle(event("!ask c'est quoi Python ?", message_id="m-1"))

    assert reply is not None
    assert (reply.source, reply.intent, reply.command, reply.reply_to) == ("fallback", "ask", "ask", "m-1")
    assert (reply.fallback_intent, reply.first_token_ms, reply.tiers) == ("ask", None, ())
    assert reply.text.startswith("@viewer32 ")
    assert reply.text.removeprefix("@viewer32 ") in await _phrases("ask")


@pytest.mark.parametrize("text", ["@serdabot salut", "SerdaBot?", "yo serdabot, ça dit quoi", "!chill"])
async def test_mentions_and_chill_get_a_chill_phrase(handler: Handler, text: str) -> None:
    reply = await handler.handle(event(text))

    assert reply is not None
    assert (reply.intent, reply.fallback_intent) == ("chill", "chill")
    assert reply.text.removeprefix("@viewer32 ") in await _phrases("chill")


@pytest.mark.parametrize("text", ["salut le chat", "serdabots", "!askip", "GG"])
async def test_ordinary_chat_gets_no_reply(handler: Handler, text: str) -> None:
    assert await handler.handle(event(text)) is None


async def test_an_empty_ask_gets_the_usage_hint(handler: Handler) -> None:
    reply = await handler.handle(event("!ask   "))

    assert reply is not None
    assert reply.text == f"@viewer32 {USAGE}"
    assert (reply.source, reply.fallback_intent, reply.first_token_ms, reply.tiers) == (
        "fallback",
        USAGE_INTENT,
        None,
        (),
    )


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
    assert silent is not None and silent.text == "@viewer32 Commande temporairement indisponible."
    assert (minimal.fallback_intent, silent.fallback_intent) == ("ask", "ask")


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
    assert (reply.source, reply.intent, reply.fallback_intent) == ("local", "ask", None)
    assert reply.text == f"@viewer32 {DEFAULT_ANSWER}"
    assert model.chat_requests == 1
    assert reply.first_token_ms is not None and 0 < reply.first_token_ms <= reply.latency_ms
    assert [(t["tier"], t["outcome"]) for t in reply.tiers] == [("local", "answered")]


async def test_a_mention_is_answered_by_the_model_with_the_chill_prompt(model: FakeOpenAI) -> None:
    handler = Handler(service(llm_config(model.url)), prompts={"ask": "ASK-PROMPT", "chill": "CHILL-PROMPT"})

    reply = await handler.handle(event("coucou @SerdaBot !"))

    assert reply is not None and (reply.source, reply.intent) == ("local", "chill")
    sent = [r for r in model.requests if not r.is_probe][-1]
    system, user = sent.body["messages"][0], sent.body["messages"][-1]
    # The chill prompt first, the rules after it; the line itself only in the user message.
    assert system["role"] == "system" and system["content"].startswith("CHILL-PROMPT\n")
    assert "ASK-PROMPT" not in system["content"]
    assert user["role"] == "user" and "coucou @SerdaBot !" in user["content"]


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
    assert (error.fallback_intent, timeout.fallback_intent) == ("ask_error", "ask_timeout")
    assert error.text.removeprefix("@viewer32 ") in await _phrases("ask_error")
    assert timeout.text.removeprefix("@viewer32 ") in await _phrases("ask_timeout")
    assert (error.first_token_ms, timeout.first_token_ms) == (None, None)
    assert [(t["tier"], t["outcome"]) for t in error.tiers] == [("local", "failed")]
    assert [(t["tier"], t["outcome"]) for t in timeout.tiers] == [("local", "timeout")]


@pytest.mark.parametrize("fault", ["http500", "hang"])
async def test_a_mention_whose_cascade_fails_gets_a_chill_phrase(model: FakeOpenAI, fault: str) -> None:
    handler = Handler(service(llm_config(model.url, breaker_failures=10)))
    model.set_fault(fault)

    reply = await handler.handle(event("salut @serdabot"))

    assert reply is not None and reply.source == "fallback"
    assert (reply.intent, reply.fallback_intent) == ("chill", "chill")
    assert reply.text.removeprefix("@viewer32 ") in await _phrases("chill")
    assert [t["tier"] for t in reply.tiers] == ["local"]
    assert reply.tiers[0]["outcome"] in ("failed", "timeout")


class Prepared:
    """An Answerer returning one prepared CascadeResult: the handler's choices for any outcome."""

    def __init__(self, result: CascadeResult) -> None:
        self.result = result
        self.intents: list[str] = []

    async def complete(self, *, intent: str, **kwargs: object) -> CascadeResult:
        self.intents.append(intent)
        return self.result


LOCAL_DOWN = TierAttempt("local", "skipped", "ConnectError")
OPENAI_TIMEOUT = TierAttempt("openai", "timeout", "Deadline", latency_ms=2000.0)


def failed(*, timed_out: bool) -> CascadeResult:
    return CascadeResult(
        None,
        "fallback",
        2001.0,
        {"openai": "Deadline" if timed_out else "HTTP500"},
        timed_out=timed_out,
        attempted=True,
        tiers=(LOCAL_DOWN, OPENAI_TIMEOUT),
    )


async def test_a_model_answer_says_when_its_first_token_came_and_what_each_tier_did() -> None:
    answered = TierAttempt("openai", "answered", latency_ms=850.0, first_token_ms=120.5)
    llm = Prepared(
        CascadeResult(
            "Un langage.", "openai", 850.0, attempted=True, first_token_ms=120.5, tiers=(LOCAL_DOWN, answered)
        )
    )

    reply = await Handler(llm).handle(event("!ask c'est quoi Python ?"))

    assert reply is not None
    assert (reply.text, reply.source, reply.fallback_intent) == ("@viewer32 Un langage.", "openai", None)
    assert reply.first_token_ms == 120.5
    assert reply.tiers == (
        {"tier": "local", "outcome": "skipped", "error": "ConnectError", "ms": None, "first_token_ms": None},
        {"tier": "openai", "outcome": "answered", "error": "", "ms": 850.0, "first_token_ms": 120.5},
    )


@pytest.mark.parametrize(("timed_out", "expected"), [(True, "ask_timeout"), (False, "ask_error")])
async def test_a_failed_ask_gets_ask_timeout_or_ask_error(timed_out: bool, expected: str) -> None:
    reply = await Handler(Prepared(failed(timed_out=timed_out))).handle(event("!ask ça va ?"))

    assert reply is not None and reply.source == "fallback"
    assert (reply.intent, reply.fallback_intent, reply.first_token_ms) == ("ask", expected, None)
    assert reply.text.removeprefix("@viewer32 ") in await _phrases(expected)
    assert [t["outcome"] for t in reply.tiers] == ["skipped", "timeout"]


@pytest.mark.parametrize("timed_out", [True, False])
@pytest.mark.parametrize("text", ["salut @serdabot", "!chill"])
async def test_a_failed_mention_or_chill_is_answered_from_chill(text: str, timed_out: bool) -> None:
    llm = Prepared(failed(timed_out=timed_out))

    reply = await Handler(llm).handle(event(text))

    assert llm.intents == ["chill"]
    assert reply is not None and reply.fallback_intent == "chill"
    assert reply.text.removeprefix("@viewer32 ") in await _phrases("chill")
    assert len(reply.tiers) == 2


@pytest.fixture
def greetings(warm_phrases: None) -> None:
    # Written here, on the test's own connection: the async test only reads the cache.
    services.add_custom_fallback("greetings", ["Coucou 👋"])


@pytest.mark.usefixtures("greetings")
async def test_a_custom_intent_whose_cascade_fails_keeps_its_own_phrases() -> None:
    handler = Handler(Prepared(failed(timed_out=True)))

    reply = await handler.answer(event("!greetings"), Command("greetings", "greetings", "!greetings"))

    assert (reply.text, reply.fallback_intent) == ("@viewer32 Coucou 👋", "greetings")


async def test_the_reported_phrase_set_is_the_one_that_answered() -> None:
    handler = Handler(Prepared(failed(timed_out=True)))

    # An intent without phrases of its own is answered from chill, and says so.
    reply = await handler.answer(event("!quiz"), Command("quiz", "quiz", "!quiz"))

    assert reply.fallback_intent == "chill"
    assert reply.text.removeprefix("@viewer32 ") in await _phrases("chill")
