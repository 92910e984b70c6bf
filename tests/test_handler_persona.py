"""Each channel's persona, language and prompts reach the model live: a save in the admin
applies to the next message, with no restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatbridge.channel_settings import settings_cache
from chatbridge.handler import Handler
from chatbridge.memory import InProcessMemory
from chatbridge.models import ChannelSettings
from chatbridge.prompts import PRESETS
from fallbacks import builtin
from fallbacks.models import Phrase
from tests.conftest import disabled_llm
from tests.fakes.openai_server import FakeOpenAI
from tests.handler_support import event
from tests.llm_helpers import llm_config, service

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("warm_phrases")]


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    settings_cache.clear()
    yield
    settings_cache.clear()


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def system_of_last(model: FakeOpenAI) -> str:
    bodies = [r.body for r in model.requests if r.path.endswith("/chat/completions") and not r.is_probe]
    return str(bodies[-1]["messages"][0]["content"])


async def test_presets_and_prompts_apply_to_the_next_message(model: FakeOpenAI) -> None:
    handler = Handler(service(llm_config(model.url)), memory=InProcessMemory())
    row = await ChannelSettings.objects.acreate(
        platform="twitch", channel="streamer", persona="english", language="en"
    )
    await settings_cache.refresh()

    await handler.handle(event("!ask what is Python?"))
    assert PRESETS["english"]["ask"] in system_of_last(model)

    # Saved as the admin saves: the signal reloads the snapshot after the commit.
    row.persona, row.language = "neutral_fr", "fr"
    await row.asave()
    await handler.handle(event("!ask c'est quoi Python ?"))
    assert PRESETS["neutral_fr"]["ask"] in system_of_last(model)
    await handler.handle(event("@serdabot salut"))
    assert PRESETS["neutral_fr"]["chill"] in system_of_last(model)

    row.ask_prompt = "Tu es un pirate. Réponds comme un pirate."
    await row.asave()
    await handler.handle(event("!ask c'est quoi Python ?"))
    assert "Tu es un pirate." in system_of_last(model)


async def test_the_stream_title_and_game_go_into_the_prompt(model: FakeOpenAI) -> None:
    handler = Handler(service(llm_config(model.url)), memory=InProcessMemory())

    await handler.handle(event("!ask on joue à quoi ?", stream_title="Speedrun any%", stream_game="Celeste"))

    system = system_of_last(model)
    assert "Speedrun any%" in system and "Celeste" in system


async def test_an_english_channel_gets_english_phrases_and_texts() -> None:
    await ChannelSettings.objects.acreate(
        platform="twitch", channel="streamer", persona="english", language="en"
    )
    await settings_cache.refresh()
    handler = Handler(disabled_llm(), memory=InProcessMemory())

    usage = await handler.handle(event("!ask"))
    assert usage is not None and usage.text.startswith("@viewer32 Usage: !ask <your question>")
    reply = await handler.handle(event("!ask what is Python?"))
    assert reply is not None

    stored = Phrase.objects.filter(intent__slug="ask", language="en").values_list("text", flat=True)
    # A transactional test may start after another emptied the tables: the built-in set answers then.
    english = {text async for text in stored} | set(builtin.ENGLISH["ask"])
    assert reply.text.removeprefix("@viewer32 ") in english
