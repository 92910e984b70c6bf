from __future__ import annotations

import pytest

from chatbridge.commands import parse

NAMES = ("serdabot",)


@pytest.mark.parametrize(
    ("text", "name", "intent", "prompt"),
    [
        ("!ask c'est quoi Python ?", "ask", "ask", "c'est quoi Python ?"),
        ("!ASK   spaced   out  ", "ask", "ask", "spaced   out"),
        ("!ask", "ask", "ask", ""),
        ("!ask    ", "ask", "ask", ""),
        ("!ask serdabot tu vas bien", "ask", "ask", "serdabot tu vas bien"),
        ("!chill", "chill", "chill", "!chill"),
        ("!chill on se détend", "chill", "chill", "on se détend"),
        ("@serdabot salut", "mention", "chill", "@serdabot salut"),
        ("salut SerdaBot", "mention", "chill", "salut SerdaBot"),
        ("serdabot?", "mention", "chill", "serdabot?"),
        ("(@SERDABOT) !", "mention", "chill", "(@SERDABOT) !"),
        ("hey serdabot, ça va", "mention", "chill", "hey serdabot, ça va"),
    ],
)
def test_it_recognises_commands_and_mentions(text: str, name: str, intent: str, prompt: str) -> None:
    command = parse(text, NAMES)
    assert command is not None
    assert (command.name, command.intent, command.prompt) == (name, intent, prompt)


@pytest.mark.parametrize(
    "text",
    ["hello chat", "serdabots are cool", "notserdabot", "mail@serdabot", "!asking for you", "!chilling", ""],
)
def test_it_ignores_ordinary_chat(text: str) -> None:
    assert parse(text, NAMES) is None


def test_it_uses_extra_names() -> None:
    assert parse("yo Serda", ("serdabot", "serda")) is not None
    assert parse("yo Serda", NAMES) is None


def test_it_trusts_a_structural_mention() -> None:
    command = parse("hey you", NAMES, mentions_bot=True)
    assert command is not None and command.intent == "chill"
