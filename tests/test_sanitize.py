from __future__ import annotations

import pytest

from chatbridge.sanitize import format_reply, limit_for, one_line, trim


def test_it_joins_lines_and_drops_control_characters() -> None:
    assert one_line("one\ntwo\r\n\tthree\x00 four\u2028five") == "one two three four five"


def test_it_keeps_emoji_sequences() -> None:
    assert one_line("👩‍💻 ok") == "👩‍💻 ok"


def test_it_trims_at_a_word_boundary() -> None:
    text = "alpha beta gamma delta"
    assert trim(text, 14) == "alpha beta…"
    assert trim(text, 100) == text


def test_it_cuts_a_single_long_word() -> None:
    assert trim("x" * 50, 10) == "x" * 9 + "…"


@pytest.mark.parametrize("body", ["/ban everyone", ".timeout someone 600", "  /me dances", "./././"])
def test_a_reply_never_starts_with_a_command_character(body: str) -> None:
    reply = format_reply("viewer", body, 500)
    assert reply.startswith("@viewer")
    assert not reply.removeprefix("@viewer").lstrip().startswith(("/", "."))


def test_it_fits_the_platform_limit_with_the_prefix() -> None:
    reply = format_reply("viewer", "mot " * 400, limit_for("twitch"))
    assert len(reply) <= 500
    assert reply.startswith("@viewer mot")
    assert "\n" not in reply
    assert len(format_reply("viewer", "mot " * 1000, limit_for("discord"))) <= 2000


def test_a_strange_user_name_stays_one_token() -> None:
    assert format_reply("evil\nname here", "hi", 500) == "@evil_name_here hi"
    assert format_reply("", "hi", 500) == "@chat hi"


def test_it_drops_lone_surrogates_and_rejoins_split_pairs() -> None:
    text = one_line("ok\ud800 go\udfff \ud83d\ude00")

    assert text == "ok go 😀"
    text.encode("utf-8")  # what every platform, the Redis layer and `chat --json` do


def test_it_drops_invisible_format_characters_but_keeps_zwj() -> None:
    # A zero-width space, a bidi override, a BOM, a tag character, a word joiner.
    hidden = "a\u200bb\u202ec\ufeffd\U000e0041e \u2060f"

    assert one_line(hidden) == "abcde f"
    assert one_line("🏳\ufe0f\u200d🌈") == "🏳\ufe0f\u200d🌈"


def test_a_reply_with_a_surrogate_in_the_name_and_body_is_valid_utf8() -> None:
    reply = format_reply("vi\ud800ewer\u200b", "réponse\udc80 du modèle\x07", 500)

    assert reply == "@viewer réponse du modèle"
    reply.encode("utf-8")


def test_ordinary_text_is_kept_as_it_is() -> None:
    text = "Ça dépend : « Python » est simple, non ? 👩‍💻 #1 — voilà."

    assert format_reply("Zoé", text, 500) == f"@Zoé {text}"
