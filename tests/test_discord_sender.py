"""What a reply looks like once made safe for Discord (links unmasked, markdown escaped), and
where it goes: a slash command's reply to its interaction, anything else to the channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest

from chatbridge.adapters.discord.adapter import point_discord_at
from chatbridge.adapters.discord.sender import (
    DISCORD_LIMIT,
    INTERACTION_LIFE,
    DiscordSender,
    Interactions,
    discord_text,
    unmasked_links,
)
from chatbridge.adapters.outbound import Outgoing
from chatbridge.cooldowns import Ticket
from tests.fakes.clock import ManualClock
from tests.fakes.fake_discord import (
    CHANNEL,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    EPHEMERAL,
    TOKEN,
    FakeDiscord,
    interaction_create,
)

SUPPRESS_EMBEDS = 1 << 2


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("voici [le site](https://evil.example/x)", "voici le site (https://evil.example/x)"),
        ('[lien](<https://a.example/b> "titre")', "lien (https://a.example/b)"),
        ("[](https://a.example)", "https://a.example"),
        ("[https://a.example](https://a.example)", "https://a.example"),
        (
            "[Python](https://fr.wikipedia.org/wiki/Python_(langage))",
            "Python (https://fr.wikipedia.org/wiki/Python_(langage))",
        ),
        ("[[x](https://in.example)](https://out.example)", "x (https://in.example) (https://out.example)"),
    ],
)
def test_it_writes_masked_links_out(text: str, shown: str) -> None:
    assert unmasked_links(text) == shown


@pytest.mark.parametrize(
    "text", ["tableau[0](1)", "[pas un lien] (ni ça)", "(voir [1])", "[x](ftp://a.example)"]
)
def test_it_leaves_brackets_that_are_not_web_links(text: str) -> None:
    assert unmasked_links(text) == text


def test_it_escapes_markdown_but_not_urls() -> None:
    text = "@Ali_ce **gras** __souligné__ ~~barré~~ `code` ||spoiler|| https://a.example/x_y_z"

    assert discord_text(text) == (
        r"@Ali\_ce \*\*gras\*\* \_\_souligné\_\_ \~\~barré\~\~ \`code\` \|\|spoiler\|\| https://a.example/x_y_z"
    )


def test_a_masked_link_is_not_left_half_escaped() -> None:
    assert discord_text("[clique_ici](https://evil.example/a_b)") == r"clique\_ici (https://evil.example/a_b)"


def test_plain_chat_text_is_unchanged() -> None:
    text = "@viewer Python, c'est un langage (simple) ! Voir https://docs.python.org/3/ 🐍"

    assert discord_text(text) == text


def test_escaping_never_pushes_a_reply_past_the_limit() -> None:
    starred = discord_text("@x " + "*" * 3000)
    words = discord_text("@x " + "a_b " * 1000)

    assert 1990 <= len(starred) <= DISCORD_LIMIT and starred.endswith("…")
    assert 1990 <= len(words) <= DISCORD_LIMIT and words.endswith("a\\_b…")


# Slash commands: the reply goes to the interaction (see sender.py), never twice.


def dm_interaction(state: Any, interaction_id: str) -> discord.Interaction[Any]:
    data = interaction_create("ask", interaction_id=interaction_id, channel="4900", guild=False)
    return discord.Interaction(data=data, state=state)  # type: ignore[arg-type]


def test_the_interactions_waiting_stay_within_the_bound_and_the_token_life() -> None:
    clock = ManualClock()
    state = discord.Client(intents=discord.Intents.default())._connection
    waiting = Interactions(clock.now, at_most=50)
    for n in range(200):
        assert waiting.expect(dm_interaction(state, str(n))) is not None
        assert len(waiting) <= 50

    assert waiting.get("0") is None and waiting.get("199") is not None  # the oldest went first
    assert waiting.expect(dm_interaction(state, "199")) is None  # delivered twice: one reply
    clock.advance(INTERACTION_LIFE - 1)
    assert waiting.get("199") is not None
    clock.advance(1)  # Discord no longer takes an answer to it
    assert waiting.get("199") is None and len(waiting) == 0


def test_a_forgotten_interaction_is_gone() -> None:
    state = discord.Client(intents=discord.Intents.default())._connection
    waiting = Interactions(ManualClock().now)
    waiting.expect(dm_interaction(state, "1"))
    waiting.forget("1")
    waiting.forget("never-seen")

    assert waiting.get("1") is None and len(waiting) == 0


@pytest.fixture
async def logged_in() -> AsyncIterator[tuple[FakeDiscord, discord.Client]]:
    """A real discord.py client logged in to the fake over REST (no gateway: none is needed)."""
    fake = await FakeDiscord().start()
    point_discord_at(fake.config())
    client = discord.Client(intents=discord.Intents.default())
    await client.login(TOKEN)
    yield fake, client
    await client.close()
    await fake.close()


def guild_interaction(client: discord.Client, interaction_id: str) -> discord.Interaction[Any]:
    data = interaction_create("ask", {"question": "x"}, interaction_id=interaction_id)
    return discord.Interaction(data=data, state=client._connection)  # type: ignore[arg-type]


def ticket() -> Ticket:
    return Ticket("discord", CHANNEL, "2000", "ask", 30.0, 5.0)


async def test_the_reply_to_a_deferred_interaction_replaces_its_thinking(
    logged_in: tuple[FakeDiscord, discord.Client],
) -> None:
    fake, client = logged_in
    waiting = Interactions(ManualClock().now)
    sender = DiscordSender(client, waiting)
    slash = waiting.expect(guild_interaction(client, "501"))
    assert slash is not None
    await slash.defer()
    await sender(
        Outgoing(CHANNEL, CHANNEL, "@Alice voici **la** [source](https://a.example/x)", "501", ticket())
    )

    assert [a["kind"] for a in fake.answers_to("501")] == ["callback", "followup"]
    followup = fake.answers_to("501")[1]
    assert followup["content"] == r"@Alice voici \*\*la\*\* source (https://a.example/x)"
    assert followup["flags"] == SUPPRESS_EMBEDS  # public, no link preview
    assert followup["allowed_mentions"] == {"parse": []}
    assert waiting.get("501") is None and fake.posts == []


async def test_after_a_private_refusal_a_notice_is_not_sent_but_an_answer_is(
    logged_in: tuple[FakeDiscord, discord.Client],
) -> None:
    fake, client = logged_in
    waiting = Interactions(ManualClock().now)
    sender = DiscordSender(client, waiting)
    noticed, answered = (waiting.expect(guild_interaction(client, i)) for i in ("601", "602"))
    assert noticed is not None and answered is not None
    await noticed.refuse("⏳ Cooldown en cours, réessaie dans un instant.")
    await answered.refuse("⏳ Cooldown en cours, réessaie dans un instant.")
    await sender(Outgoing(CHANNEL, CHANNEL, "@Alice ⏳ Surchauffe du CPU", "601"))  # a notice: no ticket
    await sender(Outgoing(CHANNEL, CHANNEL, "@Alice la réponse quand même", "602", ticket()))

    assert [a["kind"] for a in fake.answers_to("601")] == ["callback"]
    (callback,) = fake.answers_to("601")
    assert callback["type"] == CHANNEL_MESSAGE and callback["data"]["flags"] == EPHEMERAL
    assert [a["kind"] for a in fake.answers_to("602")] == ["callback", "followup"]
    assert fake.answers_to("602")[1]["content"] == "@Alice la réponse quand même"
    assert fake.posts == []


async def test_a_refusal_decided_after_the_defer_replaces_the_thinking(
    logged_in: tuple[FakeDiscord, discord.Client],
) -> None:
    fake, client = logged_in
    slash = Interactions(ManualClock().now).expect(guild_interaction(client, "651"))
    assert slash is not None
    await slash.defer()
    await slash.refuse("Commande désactivée ici.")

    defer, line = fake.answers_to("651")
    assert (defer["kind"], defer["type"], line["kind"]) == ("callback", DEFERRED_CHANNEL_MESSAGE, "followup")
    assert line["content"] == "Commande désactivée ici."


async def test_a_reply_discord_refuses_on_the_interaction_goes_to_the_channel(
    logged_in: tuple[FakeDiscord, discord.Client],
) -> None:
    fake, client = logged_in
    waiting = Interactions(ManualClock().now)
    sender = DiscordSender(client, waiting)
    slash = waiting.expect(guild_interaction(client, "701"))
    assert slash is not None
    await slash.defer()
    fake.callbacks.clear()  # Discord no longer knows the interaction: its webhook answers 404
    await sender(Outgoing(CHANNEL, CHANNEL, "@Alice trop tard pour le fil", "701", ticket()))
    await sender(Outgoing(CHANNEL, CHANNEL, "@Bob une réponse ordinaire", "702", ticket()))

    assert fake.followups == []
    late, ordinary = fake.posts
    assert late["content"] == "@Alice trop tard pour le fil" and "message_reference" not in late
    assert ordinary["message_reference"]["message_id"] == 702
    assert late["flags"] & SUPPRESS_EMBEDS and late["allowed_mentions"] == {"parse": []}
