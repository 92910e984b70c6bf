"""`!serdabot …` from chat: every control tried by a moderator, the broadcaster and a viewer,
through the real handler, database and channel-settings snapshot."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatbridge.channel_settings import settings_cache
from chatbridge.controls import TEXTS, Status
from chatbridge.events import ChatEvent
from chatbridge.handler import FORGOTTEN, NOTHING_REMEMBERED, Handler
from chatbridge.memory import InProcessMemory
from chatbridge.models import ChannelSettings
from chatbridge.moderation.models import BlockedTerm
from tests.conftest import disabled_llm
from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI
from tests.llm_helpers import llm_config, service

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("warm_phrases", "fresh_settings"),
]

FR = TEXTS["fr"]


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    settings_cache.clear()
    yield
    settings_cache.clear()


def status() -> Status:
    return Status(tiers={"local": "up", "openai": "budget"}, mode="auto", budget_left="3 req")


@pytest.fixture
def memory() -> InProcessMemory:
    return InProcessMemory()


@pytest.fixture
def handler(memory: InProcessMemory) -> Handler:
    return Handler(disabled_llm(), bot_names=("serdabot",), memory=memory, status=status)


def line(text: str, *, role: str = "moderator", channel: str = "streamer", user: str = "modo") -> ChatEvent:
    return ChatEvent(
        platform="twitch",
        channel=channel,
        user=user,
        text=text,
        is_moderator=role == "moderator",
        is_broadcaster=role == "broadcaster",
    )


async def say(handler: Handler, text: str, **kwargs: str) -> str | None:
    reply = await handler.handle(line(text, **kwargs))
    return None if reply is None else reply.text


async def row(channel: str = "streamer") -> ChannelSettings:
    return await ChannelSettings.objects.aget(platform="twitch", channel=channel)


CONTROLS = [
    "!serdabot off",
    "!serdabot on",
    "!serdabot llm off",
    "!serdabot llm on",
    "!serdabot status",
    "!serdabot block pastèque",
    "!serdabot unblock pastèque",
    "!serdabot forget @modo",
    "!serdabot",
]


@pytest.mark.parametrize("text", CONTROLS)
async def test_a_viewer_gets_silence_and_changes_nothing(handler: Handler, text: str) -> None:
    assert await say(handler, text, role="viewer", user="viewer32") is None
    assert not await ChannelSettings.objects.filter(channel="streamer").aexists()
    assert not await BlockedTerm.objects.aexists()


@pytest.mark.parametrize("role", ["moderator", "broadcaster"])
async def test_off_silences_the_channel_until_on(handler: Handler, role: str) -> None:
    assert await say(handler, "!serdabot off", role=role) == f"@modo {FR['off']}"
    assert (await row()).bot_enabled is False

    assert await say(handler, "!ask c'est quoi Python ?", role="viewer") is None
    assert await say(handler, "@serdabot salut", role="viewer") is None
    assert await say(handler, "!serdabot status", role=role) is None  # only `on` while off
    assert await say(handler, "!serdabot on", role="viewer") is None  # a viewer cannot
    # Another channel is not affected.
    assert await say(handler, "!ask quoi ?", role="viewer", channel="other") is not None

    assert await say(handler, "!serdabot on", role=role) == f"@modo {FR['on']}"
    assert (await row()).bot_enabled is True
    assert await say(handler, "!ask c'est quoi Python ?", role="viewer") is not None


async def test_llm_off_answers_with_phrases_only(memory: InProcessMemory) -> None:
    with FakeOpenAI() as model:
        handler = Handler(service(llm_config(model.url)), memory=memory, status=status)
        assert await say(handler, "!serdabot llm off") == f"@modo {FR['llm_off']}"
        assert (await row()).llm_enabled is False
        reply = await handler.handle(line("!ask c'est quoi Python ?", role="viewer"))
        assert reply is not None
        # Not a word to the model: no request, no tier in the reply.
        assert (reply.source, reply.fallback_intent, reply.tiers) == ("fallback", "ask", ())
        assert model.chat_requests == 0

        assert await say(handler, "!serdabot llm on") == f"@modo {FR['llm_on']}"
        assert (await row()).llm_enabled is True
        reply = await handler.handle(line("!ask c'est quoi Python ?", role="viewer"))
        assert reply is not None and (reply.source, reply.text) == ("local", f"@modo {DEFAULT_ANSWER}")
        assert model.chat_requests == 1


async def test_status_says_tiers_mode_and_budget(handler: Handler) -> None:
    text = await say(handler, "!serdabot status")
    assert text is not None
    assert "local up" in text and "openai budget" in text and "3 req" in text and "auto" in text


async def test_block_and_unblock_edit_this_channels_terms(handler: Handler) -> None:
    assert await say(handler, "!serdabot block pastèque") == f"@modo {FR['blocked'].format(term='p•••••••')}"
    term = await BlockedTerm.objects.aget()
    assert (term.platform, term.channel, term.term, term.regex, term.added_by) == (
        "twitch",
        "streamer",
        "pastèque",
        False,
        "modo",
    )
    again = await say(handler, "!serdabot block pastèque")
    assert again == f"@modo {FR['already_blocked'].format(term='p•••••••')}"
    assert await BlockedTerm.objects.acount() == 1

    assert (
        await say(handler, "!serdabot unblock pastèque") == f"@modo {FR['unblocked'].format(term='p•••••••')}"
    )
    assert not await BlockedTerm.objects.aexists()
    assert (
        await say(handler, "!serdabot unblock pastèque")
        == f"@modo {FR['not_blocked'].format(term='p•••••••')}"
    )


async def test_an_invalid_regex_is_refused_with_a_reason(handler: Handler) -> None:
    text = await say(handler, "!serdabot block /pas(tèque/")
    assert text is not None and text.startswith(f"@modo {FR['block_refused'].split('{')[0]}")
    assert not await BlockedTerm.objects.aexists()


async def test_forget_clears_a_viewers_memory(handler: Handler, memory: InProcessMemory) -> None:
    await memory.remember("twitch", "streamer", "viewer32", "q", "a")
    await memory.remember("twitch", "streamer", "other", "q", "a")

    assert await say(handler, "!serdabot forget @Viewer32") == f"@modo {FR['forgot'].format(user='Viewer32')}"
    assert await memory.recall("twitch", "streamer", "viewer32") == []
    assert await memory.recall("twitch", "streamer", "other") == [("q", "a")]
    assert await say(handler, "!serdabot forget") == f"@modo {FR['forget_who']}"
    again = await say(handler, "!serdabot forget @Viewer32")
    assert again == f"@modo {FR['nothing_to_forget'].format(user='Viewer32')}"


async def test_on_discord_forget_finds_the_viewer_by_id_not_by_name(memory: InProcessMemory) -> None:
    handler = Handler(disabled_llm(), memory=memory, status=status)
    # Two members both called "Alex": their conversations are apart, keyed by id.
    await memory.remember("discord", "42", "id:1001", "q1", "a1")
    await memory.remember("discord", "42", "id:1002", "q2", "a2")
    moderator = ChatEvent(
        platform="discord",
        channel="42",
        user="modo",
        text="!serdabot forget @Alex",
        is_moderator=True,
        user_id="9",
        mention_ids=("1002",),
    )

    reply = await handler.handle(moderator)

    assert reply is not None and reply.text == f"@modo {FR['forgot'].format(user='Alex')}"
    assert await memory.recall("discord", "42", "id:1002") == []
    assert await memory.recall("discord", "42", "id:1001") == [("q1", "a1")]


async def test_a_viewer_forgets_only_themselves(handler: Handler, memory: InProcessMemory) -> None:
    await memory.remember("twitch", "streamer", "viewer32", "q", "a")
    await memory.remember("twitch", "streamer", "other", "q", "a")

    reply = await handler.handle(line("!forget", role="viewer", user="Viewer32"))
    assert reply is not None and reply.command == "forget"
    assert reply.text == f"@Viewer32 {FORGOTTEN['fr']}"
    again = await handler.handle(line("!forget", role="viewer", user="Viewer32"))
    assert again is not None and again.text == f"@Viewer32 {NOTHING_REMEMBERED['fr']}"
    assert await memory.recall("twitch", "streamer", "viewer32") == []
    assert await memory.recall("twitch", "streamer", "other") == [("q", "a")]


async def test_an_unknown_control_gets_the_help(handler: Handler) -> None:
    assert await say(handler, "!serdabot danse") == f"@modo {FR['help']}"


async def test_controls_answer_in_english_in_an_english_channel(handler: Handler) -> None:
    await ChannelSettings.objects.acreate(platform="twitch", channel="streamer", language="en")
    await settings_cache.refresh()
    assert await say(handler, "!serdabot llm off") == f"@modo {TEXTS['en']['llm_off']}"


async def test_a_control_after_the_channel_was_removed_does_not_join_it_again(handler: Handler) -> None:
    # The streamer removed the channel on the setup page while a moderator's line was on its way.
    assert await say(handler, "!serdabot llm off") is not None
    saved = await row()
    assert saved.llm_enabled is False and saved.joined is False  # the adapter does not subscribe it
