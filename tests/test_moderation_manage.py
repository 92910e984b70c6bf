"""`!serdabot block` and `!serdabot unblock`: a channel's own terms, from chat."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chatbridge.moderation.manage import ALREADY_BLOCKED, EMPTY, NOTHING_TO_MATCH, TOO_LONG, block, unblock
from chatbridge.moderation.models import BlockedTerm
from chatbridge.moderation.terms import blocked_terms

pytestmark = pytest.mark.django_db

CaptureCommits = Callable[..., Any]


@pytest.fixture(autouse=True)
def empty_snapshot() -> Iterator[None]:
    blocked_terms.clear()
    yield
    blocked_terms.clear()


@pytest.fixture
def committed(django_capture_on_commit_callbacks: CaptureCommits) -> Callable[[], Any]:
    """A change committed as it would be in the bot: the signals reload the terms on leaving."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def rows() -> list[tuple[str, str, str, bool, str]]:
    return list(BlockedTerm.objects.values_list("platform", "channel", "term", "regex", "added_by"))


def test_a_moderator_blocks_a_word_in_their_channel(committed: Callable[[], Any]) -> None:
    with committed():
        assert block("twitch", "#Streamer", "  Patate ", "modo") == (True, "Patate")
    assert rows() == [("twitch", "streamer", "Patate", False, "modo")]
    assert blocked_terms.match("twitch", "streamer", "une p4tate") == "Patate"
    assert blocked_terms.match("twitch", "other", "une patate") is None


def test_a_term_between_slashes_is_a_regex(committed: Callable[[], Any]) -> None:
    with committed():
        assert block("twitch", "streamer", "/p[a4]t+e/", "modo") == (True, "p[a4]t+e")
    assert rows() == [("twitch", "streamer", "p[a4]t+e", True, "modo")]
    assert blocked_terms.match("twitch", "streamer", "pattttte") == "p[a4]t+e"


@pytest.mark.parametrize(
    ("term", "reason"),
    [
        ("/(unclosed/", "not a valid regular expression (missing ), unterminated subpattern at position 0)"),
        ("/a*/", "it matches an empty text, so it would hold every answer"),
        (
            "/(a+)+$/",
            "a repetition inside a repetition, like (a+)+, can take ages to check: write it without",
        ),
        ("   ", EMPTY),
        ("x" * 201, TOO_LONG),
        ("!!! ???", NOTHING_TO_MATCH),
    ],
)
def test_what_cannot_be_blocked_is_refused_with_a_reason(term: str, reason: str) -> None:
    assert block("twitch", "streamer", term, "modo") == (False, reason)
    assert rows() == []


def test_blocking_twice_is_refused() -> None:
    assert block("twitch", "streamer", "patate", "modo")[0]
    # The same word however written, and the same regex.
    assert block("twitch", "streamer", "PÂTATE", "other") == (False, ALREADY_BLOCKED)
    assert block("twitch", "Streamer", "p@tate", "other") == (False, ALREADY_BLOCKED)
    assert block("twitch", "streamer", "/x+/", "modo")[0]
    assert block("twitch", "streamer", "/x+/", "modo") == (False, ALREADY_BLOCKED)
    assert len(rows()) == 2


def test_a_term_blocked_everywhere_is_already_blocked() -> None:
    BlockedTerm.objects.create(term="patate")
    assert block("twitch", "streamer", "patate", "modo") == (False, ALREADY_BLOCKED)


def test_the_same_term_can_be_blocked_in_two_channels() -> None:
    assert block("twitch", "one", "patate", "modo")[0]
    assert block("twitch", "two", "patate", "modo")[0]
    assert block("discord", "one", "patate", "modo")[0]


def test_a_moderator_unblocks_a_term_however_written(committed: Callable[[], Any]) -> None:
    with committed():
        block("twitch", "streamer", "Pâtate", "modo")
    assert blocked_terms.match("twitch", "streamer", "patate") == "Pâtate"
    with committed():
        assert unblock("twitch", "STREAMER", "patate") is True
    assert rows() == []
    assert blocked_terms.match("twitch", "streamer", "patate") is None


def test_a_regex_is_unblocked_as_written() -> None:
    block("twitch", "streamer", "/p[a4]t+e/", "modo")
    assert unblock("twitch", "streamer", "p[a4]t+e") is False  # without slashes: a word
    assert unblock("twitch", "streamer", "/p[a4]t+e/") is True
    assert rows() == []


def test_unblocking_an_unknown_term_says_so() -> None:
    assert unblock("twitch", "streamer", "jamais vu") is False
    assert unblock("twitch", "streamer", "") is False


def test_a_moderator_cannot_unblock_another_channels_or_a_global_term() -> None:
    BlockedTerm.objects.create(term="global")
    BlockedTerm.objects.create(term="twitchwide", platform="twitch")
    block("twitch", "other", "patate", "modo")
    assert unblock("twitch", "streamer", "global") is False
    assert unblock("twitch", "streamer", "twitchwide") is False
    assert unblock("twitch", "streamer", "patate") is False
    assert len(rows()) == 3
