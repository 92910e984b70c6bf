"""Picking a phrase for a chat line: language, fallback mode, custom commands, variables."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from chatbridge.channel_settings import defaults
from chatbridge.commands import Command
from chatbridge.events import ChatEvent
from chatbridge.phrases import pick
from fallbacks import services
from fallbacks.commands import CustomCommand
from fallbacks.models import Intent
from fallbacks.services import MINIMAL_REPLY, SILENT_REPLY

pytestmark = pytest.mark.django_db

DISCORD = Command(
    "discord", "discord", "", custom=CustomCommand("discord", False, "", "everyone", None, None)
)


@pytest.fixture(autouse=True)
def discord_intent() -> Iterator[None]:
    Intent.objects.create(slug="discord").phrases.create(text="{user}, le Discord de {channel} !")
    services.warm()
    yield
    services.invalidate()  # the rows roll back: the cache must not keep a `!discord` for later tests


def event(**fields: object) -> ChatEvent:
    values: dict[str, object] = {
        "platform": "twitch",
        "channel": "streamer",
        "user": "viewer32",
        "text": "!discord",
    }
    values.update(fields)
    return ChatEvent(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["fun", "silent", "minimal"])
def test_a_custom_commands_phrases_are_its_answer_in_every_mode(mode: str) -> None:
    picked = pick(event(), "discord", defaults(), mode, command=DISCORD)
    assert (picked.intent, picked.body, picked.fixed) == (
        "discord",
        "viewer32, le Discord de streamer !",
        False,
    )
    assert picked.phrase == "{user}, le Discord de {channel} !"


@pytest.mark.parametrize(("mode", "text"), [("silent", SILENT_REPLY), ("minimal", MINIMAL_REPLY)])
def test_a_fallback_in_a_quiet_mode_is_the_fixed_text_and_may_repeat(mode: str, text: str) -> None:
    picked = pick(event(text="!ask quoi ?"), "ask", defaults(), mode)
    assert (picked.body, picked.fixed, picked.phrase) == (text, True, "")
    # The channel's own mode wins over the bot's.
    channel_fun = pick(event(), "discord", dataclasses.replace(defaults(), fallback_mode=mode), "fun")
    assert channel_fun.fixed and channel_fun.body == text


def test_on_discord_channel_is_the_channels_name_not_its_id() -> None:
    picked = pick(
        event(platform="discord", channel="123456789", channel_name="général"),
        "discord",
        defaults(),
        "fun",
        command=DISCORD,
    )
    assert picked.body == "viewer32, le Discord de général !"
