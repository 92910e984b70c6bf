from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from fallbacks import services
from fallbacks.commands import (
    BUILTIN_COMMANDS,
    CustomCommand,
    collisions,
    custom_commands,
    parse_aliases,
    permitted,
)
from fallbacks.models import Intent, Permission, Phrase

pytestmark = pytest.mark.django_db

CaptureCommits = Callable[..., Any]


@pytest.fixture(autouse=True)
def cold_cache() -> Iterator[None]:
    services.invalidate()
    yield
    services.invalidate()


def intent(slug: str, **fields: Any) -> Intent:
    created = Intent.objects.create(slug=slug, **fields)
    Phrase.objects.create(intent=created, text=f"Réponse de !{slug} pour {{user}} 🤖")
    return created


def loaded() -> Mapping[str, CustomCommand]:
    # The test's transaction never commits, so the on-commit reload never runs: reload here.
    services.warm()
    return custom_commands()


def test_an_intent_answers_its_slug_and_aliases() -> None:
    intent(
        "discord",
        aliases="DC, serveur ,, Serveur",
        ask_model=True,
        prompt="Tu présentes le Discord.",
        permission=Permission.SUBSCRIBERS,
        user_cooldown=30,
        channel_cooldown=5,
    )

    commands = loaded()

    expected = CustomCommand(
        slug="discord",
        ask_model=True,
        prompt="Tu présentes le Discord.",
        permission="subscribers",
        user_cooldown=30,
        channel_cooldown=5,
    )
    assert {name: commands[name] for name in ("discord", "dc", "serveur")} == dict.fromkeys(
        ("discord", "dc", "serveur"), expected
    )
    assert "DC" not in commands  # names are lowercased once, here; chat lowercases what it reads


def test_empty_cooldowns_mean_the_channels() -> None:
    intent("planning")

    command = loaded()["planning"]

    assert (command.user_cooldown, command.channel_cooldown) == (None, None)
    assert (command.ask_model, command.prompt, command.permission) == (False, "", "everyone")
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.slug = "other"  # type: ignore[misc]


def test_built_in_commands_never_map() -> None:
    intent("forget")
    intent("links", aliases="ask, chill, serdabot, forget, liens")

    commands = loaded()

    assert not BUILTIN_COMMANDS & set(commands)
    assert commands["liens"].slug == "links"
    # The seeded ask and chill intents are commands, but the built-ins answer those names.
    assert Intent.objects.get(slug="ask").command


def test_the_bots_own_intents_disabled_intents_and_non_commands_do_not_map() -> None:
    intent("planning", enabled=False, aliases="agenda")
    intent("secret", command=False, aliases="cache")
    intent("discord")

    assert set(loaded()) == {"discord"}


def test_an_intent_without_phrases_is_still_a_command() -> None:
    Intent.objects.create(slug="quiz", ask_model=True, prompt="Pose une question de culture geek.")

    assert loaded()["quiz"].ask_model


def test_a_shared_alias_goes_to_the_lower_slug_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    intent("socials", aliases="reseaux, dc")
    intent("discord", aliases="dc, serveur")

    with caplog.at_level(logging.WARNING, logger="fallbacks.commands"):
        commands = loaded()
        services.warm()  # another snapshot, built again: said already
        again = custom_commands()

    assert commands["dc"].slug == "discord"
    assert again["dc"].slug == "discord"
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "!dc" in warnings[0] and "'discord'" in warnings[0] and "'socials'" in warnings[0]


def test_an_intents_own_slug_beats_another_intents_alias() -> None:
    intent("aaa", aliases="discord")
    intent("discord")

    assert loaded()["discord"].slug == "discord"


def test_it_is_built_once_per_snapshot_and_follows_a_committed_edit(
    django_capture_on_commit_callbacks: CaptureCommits,
) -> None:
    planning = intent("planning")
    first = loaded()
    assert custom_commands() is first  # one build per snapshot: a message costs a lookup

    with django_capture_on_commit_callbacks(execute=True):
        planning.aliases = "agenda"
        planning.save()

    assert custom_commands()["agenda"].slug == "planning"

    with django_capture_on_commit_callbacks(execute=True):
        planning.command = False
        planning.save()

    assert "planning" not in custom_commands()


def test_a_cold_cache_in_an_event_loop_has_no_custom_commands() -> None:
    intent("discord")

    async def in_event_loop() -> Mapping[str, CustomCommand]:
        return custom_commands()

    # No database access from the loop: built-in phrases only, and they carry no commands.
    assert dict(asyncio.run(in_event_loop())) == {}
    assert "discord" in custom_commands()  # sync code loads it


def test_the_mapping_cannot_be_changed_by_a_caller() -> None:
    intent("discord")
    commands = loaded()
    with pytest.raises(TypeError):
        commands["x"] = commands["discord"]  # type: ignore[index]


def test_it_parses_aliases() -> None:
    assert parse_aliases(" DC, serveur,,dc , météo, a-b_c ") == (["dc", "serveur", "météo", "a-b_c"], [])
    assert parse_aliases("!dc, deux mots, ok, x.y") == (["ok"], ["!dc", "deux mots", "x.y"])
    assert parse_aliases("") == ([], [])


def test_it_names_every_collision() -> None:
    intent("discord", aliases="dc")
    intent("socials", aliases="reseaux")
    intent("old", enabled=False, aliases="vieux")

    assert collisions("planning", ["agenda", "vieux"]) == []
    assert collisions("serdabot", []) == [
        "!serdabot is a built-in command: it answers, this intent never does as a command."
    ]
    assert collisions("links", ["ask", "discord", "reseaux", "dc"]) == [
        "Alias !ask is a built-in command: the built-in answers, not this intent.",
        "Alias !discord is intent “discord”'s command: that intent answers it.",
        "Alias !reseaux is also an alias of intent “socials”: “links” answers it.",
        "Alias !dc is also an alias of intent “discord”: “discord” answers it.",
    ]
    assert collisions("dc", []) == ["!dc is also an alias of intent “discord”: this intent answers it."]
    # The seeded ask intent is the !ask command's own phrase set: no warning for its name.
    assert collisions("ask", []) == []
    assert collisions("chill", ["detente"]) == [
        "The aliases of !chill are not used: a built-in command keeps its own name."
    ]
    # Saving an intent never clashes with itself.
    assert collisions("discord", ["dc", "discord"]) == []


@pytest.mark.parametrize(
    ("permission", "allowed"),
    [
        # who:             viewer, subscriber, vip,  moderator, broadcaster
        ("everyone", (True, True, True, True, True)),
        ("subscribers", (False, True, True, True, True)),
        ("vips", (False, False, True, True, True)),
        ("moderators", (False, False, False, True, True)),
        ("nonsense", (False, False, False, True, True)),  # unknown: the safe side
    ],
)
def test_permission_table(permission: str, allowed: tuple[bool, ...]) -> None:
    badges = [
        {},
        {"subscriber": True},
        {"vip": True},
        {"moderator": True},
        {"broadcaster": True},
    ]
    results = tuple(
        permitted(
            permission,
            moderator=who.get("moderator", False),
            broadcaster=who.get("broadcaster", False),
            vip=who.get("vip", False),
            subscriber=who.get("subscriber", False),
        )
        for who in badges
    )
    assert results == allowed
