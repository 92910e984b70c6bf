"""Intents the streamer adds in the admin answer as `!<slug>` and their aliases, with
`{user}` and `{channel}` filled in; some ask the model with their own prompt."""

from __future__ import annotations

import pytest

from chatbridge.channel_settings import settings_cache
from chatbridge.handler import Handler
from chatbridge.memory import InProcessMemory
from fallbacks import services
from fallbacks.models import Intent, Phrase
from tests.conftest import disabled_llm
from tests.fakes.openai_server import FakeOpenAI
from tests.handler_support import event
from tests.llm_helpers import llm_config, service

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("warm_phrases")]


@pytest.fixture(autouse=True)
def commands() -> None:
    settings_cache.clear()
    discord = Intent.objects.create(slug="discord", aliases="serveur, disco")
    Phrase.objects.create(
        intent=discord, text="{user}, le Discord de {channel} : rejoins-nous {sans accolade}"
    )
    Intent.objects.create(slug="eteint", enabled=False).phrases.create(text="jamais")
    Intent.objects.create(slug="abonnes", permission="subscribers").phrases.create(text="Merci {user} !")
    lore = Intent.objects.create(
        slug="lore", ask_model=True, prompt="Tu racontes le lore du jeu en une phrase."
    )
    lore.phrases.create(text="Le lore est perdu dans les limbes.")
    services.warm()


@pytest.mark.parametrize("text", ["!discord", "!DISCORD", "!serveur", "!disco merci"])
async def test_a_custom_command_and_its_aliases_answer_with_variables(text: str) -> None:
    reply = await Handler(disabled_llm(), memory=InProcessMemory()).handle(event(text))

    assert reply is not None
    assert reply.text == "@viewer32 viewer32, le Discord de streamer : rejoins-nous {sans accolade}"
    assert (reply.command, reply.intent, reply.fallback_intent, reply.source) == (
        "discord",
        "discord",
        "discord",
        "fallback",
    )


async def test_a_disabled_intent_or_a_bot_state_is_no_command() -> None:
    handler = Handler(disabled_llm(), memory=InProcessMemory())
    assert await handler.handle(event("!eteint")) is None
    assert await handler.handle(event("!ask_timeout")) is None
    assert await handler.handle(event("!blocked")) is None


async def test_permissions_are_the_intents() -> None:
    handler = Handler(disabled_llm(), memory=InProcessMemory())
    assert await handler.handle(event("!abonnes")) is None
    reply = await handler.handle(event("!abonnes", is_subscriber=True))
    assert reply is not None and reply.text == "@viewer32 Merci viewer32 !"


async def test_an_intent_that_asks_the_model_uses_its_prompt_and_falls_back_to_its_phrases() -> None:
    with FakeOpenAI(answer="Il était une fois un slime.") as model:
        handler = Handler(service(llm_config(model.url)), memory=InProcessMemory())
        reply = await handler.handle(event("!lore le boss final"))
        assert reply is not None and (reply.source, reply.text) == (
            "local",
            "@viewer32 Il était une fois un slime.",
        )
        bodies = [r.body for r in model.requests if r.path.endswith("/chat/completions") and not r.is_probe]
        system = bodies[-1]["messages"][0]["content"]
        assert "Tu racontes le lore du jeu en une phrase." in system

    down = await Handler(disabled_llm(), memory=InProcessMemory()).handle(event("!lore le boss final"))
    assert down is not None
    assert (down.fallback_intent, down.text) == ("lore", "@viewer32 Le lore est perdu dans les limbes.")
