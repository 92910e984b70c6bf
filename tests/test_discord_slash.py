"""/ask and /chill: real discord.py (CommandTree, Interaction) against the fake Discord on
127.0.0.1, through the real relay, channel layer, worker and handler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest
from asgiref.sync import sync_to_async
from channels_redis.core import RedisChannelLayer

from chatbridge.adapters.discord import DiscordAdapter
from chatbridge.adapters.discord.messages import slash_event
from chatbridge.adapters.discord.slash import UNAVAILABLE, line
from chatbridge.config import DiscordConfig
from chatbridge.models import ChannelSettings
from serdabot.env import SettingError
from serdabot.redis_hosts import redis_host
from tests.adapter_support import eventually, running, running_bot
from tests.fakes import fake_discord as dc
from tests.fakes.clock import ManualClock
from tests.fakes.fake_discord import FakeDiscord, interaction_create, thread_create
from tests.faults import PrivateRedis

pytestmark = pytest.mark.django_db(transaction=True)

SUPPRESS_EMBEDS = 1 << 2
MODERATOR = str(int(dc.EVERYONE_PERMISSIONS) | dc.MANAGE_MESSAGES)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    discord = await FakeDiscord().start()
    yield discord
    await discord.close()


@pytest.fixture
async def layer() -> AsyncIterator[Any]:
    async with running_bot() as layer:
        yield layer


def adapter_for(fake: FakeDiscord, **config: Any) -> DiscordAdapter:
    config.setdefault("guilds", (int(dc.GUILD),))
    return DiscordAdapter(fake.config(**config), layer=None, clock=ManualClock())


async def use(fake: FakeDiscord, interaction_id: str, command: str, text: str = "", **kwargs: Any) -> str:
    options = {("question" if command == "ask" else "message"): text} if text else {}
    payload = interaction_create(command, options, interaction_id=interaction_id, **kwargs)
    await fake.dispatch("INTERACTION_CREATE", payload)
    return interaction_id


def kinds(fake: FakeDiscord, interaction_id: str) -> list[tuple[str, int | None]]:
    """(what, callback type) for each thing the bot sent for the interaction."""
    return [(a["kind"], a.get("type")) for a in fake.answers_to(interaction_id)]


def private_line(fake: FakeDiscord, interaction_id: str) -> str:
    """The one response of a refused interaction: an ephemeral message, nothing after it."""
    (callback,) = fake.answers_to(interaction_id)
    assert callback["kind"] == "callback" and callback["type"] == dc.CHANNEL_MESSAGE
    assert callback["data"]["flags"] & dc.EPHEMERAL
    assert callback["data"]["allowed_mentions"] == {"parse": []}
    return str(callback["data"]["content"])


async def started(fake: FakeDiscord) -> None:
    await asyncio.wait_for(fake.identified.wait(), 10)


async def test_the_commands_are_synced_to_each_configured_server_at_start(
    fake: FakeDiscord, layer: Any
) -> None:
    adapter = adapter_for(fake, guilds=(int(dc.GUILD), 3001))
    async with running(adapter):
        await started(fake)

    assert fake.synced(dc.GUILD) == ["ask", "chill"]
    assert fake.synced("3001") == ["ask", "chill"]
    assert [where for where, _ in fake.command_syncs] == [dc.GUILD, "3001"]  # nothing global
    ask = fake.command_syncs[0][1][0]
    assert ask["options"] == [
        {
            "type": 3,
            "name": "question",
            "description": "Ta question",
            "required": True,
            "min_length": 1,
            "max_length": 2000,
        }
    ]
    assert ask["dm_permission"] is False  # DMs are off: the commands are not offered there
    # Synced before the gateway connection, once.
    assert fake.requests.index(f"PUT /api/v10/applications/{dc.BOT['id']}/guilds/{dc.GUILD}/commands") < (
        fake.requests.index("GET /gateway")
    )


async def test_without_servers_they_are_synced_globally_and_the_log_says_so(
    fake: FakeDiscord, layer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chatbridge.discord")
    adapter = adapter_for(fake, guilds=(), allow_dms=True)
    async with running(adapter):
        await started(fake)
        asked = await use(fake, "9101", "ask", "en global ?", guild_command=False)
        await eventually(lambda: len(fake.answers_to(asked)) == 2, what="the answer")

    assert [where for where, _ in fake.command_syncs] == [None]
    assert fake.synced(None) == ["ask", "chill"]
    assert fake.command_syncs[0][1][0]["dm_permission"] is True
    said = [r.getMessage() for r in caplog.records if "DISCORD_GUILDS" in r.getMessage()]
    assert len(said) == 1 and "globally" in said[0]


async def test_a_server_refusing_the_sync_is_logged_and_the_bot_still_answers(
    fake: FakeDiscord, layer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake.refuse_sync_to = {"3001"}
    adapter = adapter_for(fake, guilds=(3001, int(dc.GUILD)))
    async with running(adapter):
        await started(fake)
        asked = await use(fake, "9201", "ask", "ça marche quand même ?")
        await eventually(lambda: len(fake.answers_to(asked)) == 2, what="the answer")

    assert fake.synced(dc.GUILD) == ["ask", "chill"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("server 3001" in w and "applications.commands" in w for w in warnings)
    assert not adapter.command_sync.done  # tried again at the next start


async def test_ask_is_deferred_then_answered_by_exactly_one_followup(fake: FakeDiscord, layer: Any) -> None:
    adapter = adapter_for(fake)
    async with running(adapter):
        await started(fake)
        asked = await use(fake, "9301", "ask", "c'est quoi @everyone ?")
        await eventually(lambda: adapter.status.messages_out == 1, what="the answer to be sent")

    assert kinds(fake, asked) == [("callback", dc.DEFERRED_CHANNEL_MESSAGE), ("followup", None)]
    defer, followup = fake.answers_to(asked)
    assert "data" not in defer or not (defer["data"] or {}).get("flags", 0) & dc.EPHEMERAL  # public
    assert followup["content"].startswith("@Alice ")
    assert followup["allowed_mentions"] == {"parse": []}
    assert followup["flags"] & SUPPRESS_EMBEDS
    assert fake.posts == []  # nothing in the channel itself
    assert adapter.status.messages_in == 1


async def test_chill_without_a_message_is_answered(fake: FakeDiscord, layer: Any) -> None:
    adapter = adapter_for(fake)
    async with running(adapter):
        await started(fake)
        chilled = await use(fake, "9401", "chill")
        await eventually(lambda: len(fake.answers_to(chilled)) == 2, what="the answer")

    assert kinds(fake, chilled) == [("callback", dc.DEFERRED_CHANNEL_MESSAGE), ("followup", None)]
    assert fake.answers_to(chilled)[1]["content"].startswith("@Alice ")


@pytest.mark.parametrize("message_content", [True, False])
async def test_ask_works_with_or_without_the_message_content_intent(
    fake: FakeDiscord, layer: Any, message_content: bool
) -> None:
    adapter = adapter_for(fake, message_content=message_content)
    async with running(adapter):
        await started(fake)
        asked = await use(fake, "9501", "ask", "sans le contenu des messages ?")
        await eventually(lambda: len(fake.answers_to(asked)) == 2, what="the answer")

    (identify,) = fake.identifies
    assert bool(identify["intents"] & dc.MESSAGE_CONTENT_INTENT) is message_content
    assert fake.answers_to(asked)[1]["kind"] == "followup"


@pytest.mark.parametrize("notice", [False, True])
async def test_a_cooldown_gets_a_private_line_and_nothing_in_the_channel(
    fake: FakeDiscord, layer: Any, notice: bool
) -> None:
    await sync_to_async(ChannelSettings.objects.create)(
        platform="discord", channel=dc.CHANNEL, label="#general", cooldown_notice=notice
    )
    adapter = adapter_for(fake)
    async with running(adapter):
        await started(fake)
        first = await use(fake, "9601", "ask", "un")
        await eventually(lambda: len(fake.answers_to(first)) == 2, what="the first answer")
        second = await use(fake, "9602", "ask", "deux")
        await eventually(lambda: fake.answers_to(second), what="the cooldown line")
        # The relay's own public notice (when on) is taken as given by the private line.
        await eventually(lambda: adapter.status.messages_out == 1 + notice, what="the notice to be settled")

    assert private_line(fake, second) == "⏳ Cooldown en cours, réessaie dans un instant."
    assert adapter.status.cooldown_hits == 1
    assert fake.posts == []
    assert len(fake.followups) == 1  # the first answer only


async def test_a_disabled_command_gets_a_private_line(fake: FakeDiscord, layer: Any) -> None:
    await sync_to_async(ChannelSettings.objects.create)(
        platform="discord", channel=dc.CHANNEL, label="#general", ask_enabled=False
    )
    await sync_to_async(ChannelSettings.objects.create)(
        platform="discord", channel=dc.OTHER_CHANNEL, label="#off-topic", ask_enabled=False, language="en"
    )
    adapter = adapter_for(fake)
    async with running(adapter):
        await started(fake)
        refused = await use(fake, "9701", "ask", "tu es là ?")
        english = await use(fake, "9702", "ask", "are you there?", channel=dc.OTHER_CHANNEL)
        chilled = await use(fake, "9703", "chill", "et ça ?")
        await eventually(lambda: len(fake.answers_to(chilled)) == 2, what="the chill answer")
        await eventually(lambda: fake.answers_to(english), what="the English line")

    assert private_line(fake, refused) == "Commande désactivée ici."
    assert private_line(fake, english) == "This command is off here."
    assert kinds(fake, chilled) == [("callback", dc.DEFERRED_CHANNEL_MESSAGE), ("followup", None)]
    assert adapter.status.messages_in == 3


async def test_a_paused_channel_says_so_privately(fake: FakeDiscord, layer: Any) -> None:
    await sync_to_async(ChannelSettings.objects.create)(
        platform="discord", channel=dc.CHANNEL, label="#general", bot_enabled=False
    )
    adapter = adapter_for(fake)
    async with running(adapter):
        await started(fake)
        asked = await use(fake, "9801", "ask", "tu dors ?")
        await eventually(lambda: fake.answers_to(asked), what="the line")

    assert private_line(fake, asked) == "💤 Je suis en pause dans ce salon."


async def test_in_a_thread_the_parent_channels_settings_apply(fake: FakeDiscord, layer: Any) -> None:
    await sync_to_async(ChannelSettings.objects.create)(
        platform="discord", channel=dc.CHANNEL, label="#general", ask_enabled=False
    )
    adapter = adapter_for(fake)
    async with running(adapter):
        await started(fake)
        await fake.dispatch("THREAD_CREATE", thread_create("4100", parent=dc.CHANNEL))
        refused = await use(fake, "9851", "ask", "dans le fil ?", channel="4100")
        chilled = await use(fake, "9852", "chill", "et ça ?", channel="4100")
        await eventually(lambda: len(fake.answers_to(chilled)) == 2, what="the chill answer")
        await eventually(lambda: fake.answers_to(refused), what="the line")

    assert private_line(fake, refused) == "Commande désactivée ici."
    assert kinds(fake, chilled) == [("callback", dc.DEFERRED_CHANNEL_MESSAGE), ("followup", None)]


async def test_a_channel_not_listed_gets_a_private_line(fake: FakeDiscord, layer: Any) -> None:
    adapter = adapter_for(fake, channels=(dc.OTHER_CHANNEL,))
    async with running(adapter):
        await started(fake)
        elsewhere = await use(fake, "9901", "ask", "ici ?", channel=dc.CHANNEL)
        listed = await use(fake, "9902", "ask", "et là ?", channel=dc.OTHER_CHANNEL)
        await eventually(lambda: len(fake.answers_to(listed)) == 2, what="the listed channel's answer")
        await eventually(lambda: fake.answers_to(elsewhere), what="the line")

    assert private_line(fake, elsewhere) == "Je ne réponds pas dans ce salon."
    assert adapter.status.messages_in == 1  # the refused one never reached the relay


async def test_a_direct_message_without_dms_allowed_gets_a_private_line(
    fake: FakeDiscord, layer: Any
) -> None:
    adapter = adapter_for(fake)
    async with running(adapter):
        await started(fake)
        direct = await use(fake, "9951", "ask", "en privé ?", channel="4900", guild=False)
        await eventually(lambda: fake.answers_to(direct), what="the line")

    assert private_line(fake, direct) == "Je ne réponds pas dans ce salon."


async def test_a_moderator_known_by_their_permissions_bypasses_the_cooldown(
    fake: FakeDiscord, layer: Any
) -> None:
    moderator = {**dc.HUMAN, "id": "2100", "username": "modo", "global_name": "Modo"}
    adapter = adapter_for(fake)
    async with running(adapter):
        await started(fake)
        first = await use(fake, "9961", "ask", "un")
        await eventually(lambda: len(fake.answers_to(first)) == 2, what="the member's answer")
        cooled = await use(fake, "9962", "ask", "deux")
        await eventually(lambda: fake.answers_to(cooled), what="the member's cooldown line")
        moderated = await use(fake, "9963", "ask", "trois", user=moderator, permissions=MODERATOR)
        await eventually(lambda: len(fake.answers_to(moderated)) == 2, what="the moderator's answer")

    assert kinds(fake, cooled) == [("callback", dc.CHANNEL_MESSAGE)]
    assert fake.answers_to(moderated)[1]["content"].startswith("@Modo ")


async def test_an_interaction_delivered_twice_is_answered_once(fake: FakeDiscord, layer: Any) -> None:
    adapter = adapter_for(fake)
    async with running(adapter):
        await started(fake)
        payload = interaction_create("ask", {"question": "écho ?"}, interaction_id="9971")
        await fake.dispatch("INTERACTION_CREATE", payload)
        await fake.dispatch("INTERACTION_CREATE", payload)
        await eventually(lambda: adapter.status.messages_out == 1, what="the answer")

    assert kinds(fake, "9971") == [("callback", dc.DEFERRED_CHANNEL_MESSAGE), ("followup", None)]


async def test_an_interaction_discord_no_longer_takes_is_answered_in_the_channel(
    fake: FakeDiscord, layer: Any
) -> None:
    stale = interaction_create("ask", {"question": "trop tard ?"}, interaction_id="9981")
    stale["token"] = "expired-token"  # Discord answers 404 Unknown interaction to its callback
    adapter = adapter_for(fake)
    async with running(adapter):
        await started(fake)
        await fake.dispatch("INTERACTION_CREATE", stale)
        await eventually(lambda: fake.posts, what="the answer in the channel")

    (post,) = fake.posts
    assert post["channel"] == dc.CHANNEL and post["content"].startswith("@Alice ")
    assert "message_reference" not in post  # the interaction is no message to reply to
    assert post["flags"] & SUPPRESS_EMBEDS
    assert fake.callbacks == []


async def test_with_the_channel_layer_down_the_relays_own_answer_replaces_the_thinking(
    fake: FakeDiscord, layer: Any
) -> None:
    with PrivateRedis(start=False) as redis:  # its port refuses every connection
        down = RedisChannelLayer(hosts=[redis_host(redis.url)])
        adapter = DiscordAdapter(fake.config(guilds=(int(dc.GUILD),)), layer=down, clock=ManualClock())
        async with running(adapter):
            await started(fake)
            asked = await use(fake, "9991", "ask", "quelqu'un ?")
            await eventually(lambda: len(fake.answers_to(asked)) == 2, what="the relay's own answer")

    assert kinds(fake, asked) == [("callback", dc.DEFERRED_CHANNEL_MESSAGE), ("followup", None)]
    assert fake.answers_to(asked)[1]["content"].startswith("@Alice ")
    assert adapter.relay is not None and adapter.relay.guarded == 1


async def test_a_command_the_bot_does_not_know_gets_a_private_line(fake: FakeDiscord, layer: Any) -> None:
    adapter = adapter_for(fake)
    async with running(adapter):
        await started(fake)
        unknown = await use(fake, "9992", "planning")  # still listed by Discord after an update
        await eventually(lambda: fake.answers_to(unknown), what="the line")

    assert private_line(fake, unknown) == line(UNAVAILABLE)
    assert adapter.status.messages_in == 0


async def test_an_interaction_becomes_the_event_a_chat_line_would() -> None:
    # The library's own state, fed the gateway's READY user and GUILD_CREATE: no network.
    client = discord.Client(intents=discord.Intents.default())
    state = client._connection
    state.user = discord.ClientUser(state=state, data=dc.BOT)  # type: ignore[arg-type]
    state.parse_guild_create(dc.guild_create())
    owner = {**dc.HUMAN, "id": dc.OWNER_ID, "username": "streamer", "global_name": "Streamer"}

    def event(payload: dict[str, Any], command: str, text: str) -> Any:
        return slash_event(discord.Interaction(data=payload, state=state), command, text)  # type: ignore[arg-type]

    member = event(interaction_create("ask", interaction_id="1"), "ask", "c'est\ud800 quoi ?")
    moderator = event(interaction_create("chill", interaction_id="2", permissions=MODERATOR), "chill", "")
    streamer = event(interaction_create("ask", interaction_id="3", user=owner), "ask", "z")
    direct = event(interaction_create("ask", interaction_id="4", channel="4900", guild=False), "ask", "z")
    await client.close()

    assert (member.text, member.message_id) == ("!ask c'est quoi ?", "1")
    assert (member.channel, member.channel_id) == (dc.CHANNEL, dc.CHANNEL)
    assert (member.user, member.user_id) == ("Alice", dc.HUMAN["id"])
    assert (member.is_moderator, member.is_broadcaster, member.mentions_bot) == (False, False, False)
    assert (moderator.text, moderator.is_moderator, moderator.is_broadcaster) == ("!chill", True, False)
    assert streamer.is_broadcaster
    assert (direct.channel, direct.is_moderator, direct.is_broadcaster) == ("4900", False, False)


@pytest.mark.parametrize(
    ("raw", "guilds"),
    [("", ()), ("3000", (3000,)), (" 3000, 3001 ,3000", (3000, 3001))],
)
def test_discord_guilds_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, guilds: tuple[int, ...]
) -> None:
    monkeypatch.setenv("DISCORD_GUILDS", raw)
    monkeypatch.delenv("DISCORD_MESSAGE_CONTENT", raising=False)

    config = DiscordConfig.from_env()

    assert config.guilds == guilds
    assert config.message_content is True


def test_a_guild_that_is_not_an_id_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_GUILDS", "3000,mon-serveur")

    with pytest.raises(SettingError, match=r"DISCORD_GUILDS.*mon-serveur"):
        DiscordConfig.from_env()


def test_the_message_content_intent_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_MESSAGE_CONTENT", "0")

    assert DiscordConfig.from_env().message_content is False
