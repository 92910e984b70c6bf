"""What a reply looks like once made safe for Discord (links unmasked, markdown escaped)."""

from __future__ import annotations

import pytest

from chatbridge.adapters.discord.sender import DISCORD_LIMIT, discord_text, unmasked_links


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
