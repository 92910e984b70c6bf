"""The admin's "Try this phrase" shows the line the handler sends for that phrase, and which
leading characters chat will not see."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chatbridge.channel_settings import settings_cache
from chatbridge.handler import Handler
from chatbridge.memory import InProcessMemory
from fallbacks import preview, services
from fallbacks.models import Intent
from tests.conftest import disabled_llm
from tests.handler_support import event

PHRASES = [
    "Salut {user}, bienvenue sur la chaîne de {channel} ! 🎉",
    "/me danse pour {user}",
    "./.. trois points et une barre",
    "Deux\nlignes\tet une tabulation",
    "Des {accolades} qui ne sont pas des variables {}",
    # Within the 500 characters a phrase may have, but not once "@viewer42 " is in front.
    "Un très long message " + "bla " * 120,
    "x" * 500,
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("platform", ["twitch", "discord"])
@pytest.mark.parametrize("text", PHRASES)
async def test_the_preview_is_what_the_handler_sends_for_the_phrase(platform: str, text: str) -> None:
    settings_cache.clear()
    intent = await Intent.objects.acreate(slug="apercu")
    await intent.phrases.acreate(text=text)
    services.invalidate()
    await services.reload_from_signal()
    if platform == "discord":  # a channel id there; `{channel}` is filled with its name
        line = event("!apercu", platform=platform, channel="1234", channel_name=preview.SAMPLE_CHANNEL)
    else:
        line = event("!apercu", platform=platform, channel=preview.SAMPLE_CHANNEL)
    line = replace(line, user=preview.SAMPLE_USER)
    reply = await Handler(disabled_llm(), memory=InProcessMemory()).handle(line)

    assert reply is not None and reply.fallback_intent == "apercu"
    assert preview.chat_reply(text, platform) == reply.text
    services.invalidate()


def test_a_long_phrase_is_cut_on_twitch_and_not_on_discord() -> None:
    twitch, discord = preview.previews("Un très long message " + "bla " * 120)
    assert (twitch.platform, twitch.limit, twitch.cut) == ("twitch", 500, True)
    assert twitch.length <= 500 and twitch.reply.endswith("…")
    assert (discord.platform, discord.limit, discord.cut) == ("discord", 2000, False)
    assert discord.reply == "@viewer42 Un très long message " + ("bla " * 120).strip()


def test_a_short_phrase_is_not_cut() -> None:
    assert not any(item.cut for item in preview.previews("Court et efficace ⚡"))


def test_the_placeholders_are_filled_with_the_sample_viewer_and_channel() -> None:
    assert (
        preview.chat_reply("Salut {user} sur {channel}", "twitch") == "@viewer42 Salut viewer42 sur streamer"
    )


@pytest.mark.parametrize(
    ("text", "dropped"),
    [
        ("/me danse", "/"),
        (".hello", "."),
        ("  ./ bonjour", "./"),
        ("... et voilà", "..."),
        ("\n/commande", "/"),
        ("Bonjour.", ""),
        ("…suspense", ""),  # the ellipsis character is no chat command
        ("Salut /me", ""),
        ("", ""),
    ],
)
def test_the_leading_characters_chat_will_not_see(text: str, dropped: str) -> None:
    assert preview.dropped_start(text) == dropped
