"""Links out of answers for channels that do not allow them; file names and numbers stay."""

from __future__ import annotations

import pytest

from chatbridge.moderation.links import strip_links

STRIPPED = [
    ("Va voir https://example.com/truc?a=1.", "Va voir."),
    ("Va voir http://exemple.fr", "Va voir"),
    ("Rejoins discord.gg/abc123 !", "Rejoins !"),
    ("Le live : twitch.tv/serda_bot", "Le live :"),
    ("Voir www.site.fr, ou (https://x.com).", "Voir, ou."),
    ("[la doc](https://docs.python.org/3/) est top", "la doc est top"),
    ("Écris à moi@exemple.com pour ça", "Écris à pour ça"),
    ("Tout est sur EXAMPLE.COM/Page", "Tout est sur"),
    ("sub.domain.co.uk/path?x=1#y et voilà", "et voilà"),
    ("ftp://files.example.org/a", ""),
    ("https://fr.wikipedia.org/wiki/Python_(langage)) fin", ") fin"),
    ("bit.ly/3xYz et youtu.be/dQw4w9WgXcQ", "et"),
    ("Tout est sur exemple.fr.", "Tout est sur."),
    ("le site exemple.com, puis le reste", "le site, puis le reste"),
    ("Regarde www.exemple.co.uk: c'est top", "Regarde : c'est top"),  # spaced as French writes it
]

KEPT = [
    "Python est un langage lisible.",
    "Ouvre main.py puis README.md et package.json",
    "node.js, vue.js et script.sh",
    "La version 3.14 sort en octobre, 12:30 pile.",
    "e.g. ceci, i.e. cela",
    "Mon pseudo est @serda, pas de lien ici.",
    "fin de phrase.Début collé",
    "",
]


@pytest.mark.parametrize(("text", "expected"), STRIPPED)
def test_it_removes_links(text: str, expected: str) -> None:
    assert strip_links(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_it_keeps_text_without_links_as_it_is(text: str) -> None:
    assert strip_links(text) == text
