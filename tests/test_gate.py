"""Who may use which command where: the rule the relay and the handler share."""

from __future__ import annotations

import dataclasses

import pytest

from chatbridge import gate
from chatbridge.channel_settings import ChannelConfig, defaults
from chatbridge.events import ChatEvent
from fallbacks.commands import CustomCommand

NAMES = ("serdabot",)
CUSTOM = {
    "discord": CustomCommand("discord", False, "", "everyone", None, None),
    "planning": CustomCommand("planning", False, "", "subscribers", 60, None),
    "vip": CustomCommand("vip", False, "", "vips", None, 0),
    "modo": CustomCommand("modo", False, "", "moderators", None, None),
    # Never made by custom_commands() ("mention" is reserved), but the gate must not trust that.
    "mention": CustomCommand("mention", False, "", "moderators", None, None),
}


def event(text: str, role: str = "viewer") -> ChatEvent:
    return ChatEvent(
        "twitch",
        "streamer",
        "someone",
        text,
        is_moderator=role == "moderator",
        is_broadcaster=role == "broadcaster",
        is_vip=role == "vip",
        is_subscriber=role == "subscriber",
    )


@pytest.fixture
def config() -> ChannelConfig:
    return defaults()


def allowed(text: str, role: str, config: ChannelConfig) -> str | None:
    command = gate.decide(event(text, role), config, NAMES, CUSTOM)
    return None if command is None else command.name


@pytest.mark.parametrize(
    ("text", "viewer", "subscriber", "vip", "moderator", "broadcaster"),
    [
        ("!discord", "discord", "discord", "discord", "discord", "discord"),
        ("!planning", None, "planning", "planning", "planning", "planning"),
        ("!vip", None, None, "vip", "vip", "vip"),
        ("!modo", None, None, None, "modo", "modo"),
        ("!serdabot status", None, None, None, "serdabot", "serdabot"),
        ("!forget", "forget", "forget", "forget", "forget", "forget"),
        ("!mention", None, None, None, "mention", "mention"),
    ],
)
def test_permissions(
    config: ChannelConfig,
    text: str,
    viewer: str | None,
    subscriber: str | None,
    vip: str | None,
    moderator: str | None,
    broadcaster: str | None,
) -> None:
    got = [
        allowed(text, role, config) for role in ("viewer", "subscriber", "vip", "moderator", "broadcaster")
    ]
    assert got == [viewer, subscriber, vip, moderator, broadcaster]


def test_a_channel_switched_off_takes_only_on_from_a_moderator(config: ChannelConfig) -> None:
    off = dataclasses.replace(config, bot_enabled=False)
    for text in ("!ask quoi ?", "@serdabot yo", "!discord", "!forget", "!serdabot status", "!serdabot off"):
        assert allowed(text, "moderator", off) is None, text
    assert allowed("!serdabot on", "moderator", off) == "serdabot"
    assert allowed("!serdabot ON", "broadcaster", off) == "serdabot"
    assert allowed("!serdabot on", "viewer", off) is None


def test_disabled_builtins_stay_disabled_and_custom_ones_follow_their_intent(config: ChannelConfig) -> None:
    quiet = dataclasses.replace(config, commands=frozenset())
    assert allowed("!ask quoi ?", "viewer", quiet) is None
    assert allowed("!forget", "viewer", quiet) is None  # nothing remembered where the model never speaks
    assert allowed("!discord", "viewer", quiet) == "discord"


def test_cooldowns_come_from_the_intent_or_the_channel(config: ChannelConfig) -> None:
    def seconds(text: str, role: str = "moderator") -> tuple[float, float]:
        command = gate.decide(event(text, role), config, NAMES, CUSTOM)
        assert command is not None
        return gate.cooldowns(command, config)

    assert seconds("!discord") == (config.user_cooldown, config.channel_cooldown)
    assert seconds("!planning") == (60.0, config.channel_cooldown)
    assert seconds("!vip") == (config.user_cooldown, 0.0)
    assert seconds("!serdabot status") == (0.0, 0.0)
