"""Normalisation of answers for blocked terms: the table of disguises, and what must not match."""

from __future__ import annotations

import pytest

from chatbridge.moderation.normalize import analyse, fold, normalize, squeeze
from chatbridge.moderation.terms import TermRow, build_index

# (what the model wrote, the normalised words)
NORMALISED = [
    # case and accents
    ("CONNARD", "connard"),
    ("Enculé", "encule"),
    ("ÇA VA ÊTRE DRÔLE", "ca va etre drole"),
    ("naïve façade", "naive facade"),
    # look-alike letters: Cyrillic, Greek, small capitals, Latin letters NFKD keeps whole
    ("соnnаrd", "connard"),  # Cyrillic с о а
    ("ΡУТЕ", "pyte"),  # Greek Ρ, Cyrillic У Т Е
    ("рuтe", "pute"),  # Cyrillic р and т
    ("ϲοn", "con"),  # Greek lunate sigma and omicron
    ("ᴄᴏɴɴᴀʀᴅ", "connard"),
    ("łøser", "loser"),
    ("Straße", "strasse"),
    # fullwidth and other compatibility forms
    ("ｃｏｎｎａｒｄ", "connard"),
    ("𝐜𝐨𝐧𝐧𝐚𝐫𝐝", "connard"),
    ("ⓒⓞⓝ", "con"),
    # invisible characters inside a word
    ("con\u200bnard", "connard"),
    ("co\u00adn", "con"),
    ("c\U000e0041on", "con"),  # a tag character
    # leetspeak inside a word that has letters
    ("c0nn4rd", "connard"),
    ("5alop3", "salope"),
    ("b1tch", "bitch"),
    ("7ruc", "truc"),
    ("b@tard", "batard"),
    ("a$$hole", "asshole"),
    ("m€rde", "merde"),
    # a number stays a number
    ("en 2024 et 1337", "en 2024 et 1337"),
    ("il y a 3 chats", "il ya 3 chats"),
    ("$100", "$100"),
    # punctuation inside a word is removed, apostrophes separate
    ("c.o.n.n.a.r.d", "connard"),
    ("f-u-c-k", "fuck"),
    ("f_u_c_k", "fuck"),
    ("con*nard", "connard"),
    ("C'est con, non ?", "c est con non"),
    ("d’enculé", "d encule"),
    # runs of single characters join
    ("c o n n a r d", "connard"),
    ("f . u . c . k", "fuck"),
    ("t'es un c o n !", "t es un con"),
    ("c 0 n", "con"),
    # stretched letters stay as written in the text (see the squeezed reading below)
    ("fuuuuck", "fuuuuck"),
    # emoji and spacing
    ("  trop   cool 🎉  ", "trop cool"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "expected"), NORMALISED)
def test_it_normalises(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_it_normalises_a_term_and_a_disguise_the_same_way() -> None:
    assert normalize("Fils de P.U.T.E") == normalize("fils de pute") == "fils de pute"


def test_it_reads_other_ways_for_single_words() -> None:
    assert analyse("sa1aud").extras == ["salaud"]  # 1 read as l
    assert analyse("@ss").extras == ["ass"]  # a leading @ read as a, not a mention
    assert analyse("@connard").words == ["connard"]  # ... and as a mention
    assert analyse("sous-merde").extras == ["sous", "merde"]  # parts of a hyphenated word
    assert analyse("nul.connard").extras == ["nul", "connard"]  # a missing space after a period
    assert analyse("fuuuuck").squeezed == ["fuck"]
    assert analyse("conn").squeezed == []  # two of a letter is spelling, not stretching


def test_fold_and_squeeze() -> None:
    assert fold("ÀÉÎÕÜ") == "aeiou"
    assert fold("plain ascii") == "plain ascii"
    assert squeeze("connnnnard") == "conard"


# (blocked term, text, whether the text is blocked)
MATCHES = [
    ("connard", "Quel CONNARD celui-là", True),
    ("connard", "quel c.o.n.n.a.r.d", True),
    ("connard", "quel c o n n a r d", True),
    ("connard", "quel c0nn4rd", True),
    ("connard", "quel соnnаrd", True),  # Cyrillic
    ("connard", "quel ｃｏｎｎａｒｄ", True),
    ("connard", "quel connnnnard", True),  # stretched
    ("connard", "quel coooonnnnard", True),
    ("connard", "t'es nul.connard", True),
    ("connard", "quel @connard", True),
    ("fuck", "f-u-c-k this", True),
    ("fuck", "fuuuuuck", True),
    ("fuck", "ƒuck", True),
    ("salaud", "espèce de sa1aud", True),
    ("salaud", "espèce de 5al4ud", True),
    ("ass", "what an @ss", True),
    ("merde", "une sous-merde", True),
    ("encule", "espèce d'enculé", True),
    ("enculé", "ENCULE", True),
    ("fils de pute", "t'es qu'un fils de p.u.t.e", True),
    ("fils de pute", "fils   de\tpute", True),
    # a word term never matches inside another word
    ("con", "un bon conseil", False),
    ("con", "une seconde", False),
    ("con", "le flocon tombe", False),
    ("con", "ma conn à la base", False),  # two n's: a spelling, not a stretched con
    ("con", "les cons", False),  # the plural is a term of its own
    ("con", "Marc on y va", False),  # letters of two real words never join
    ("con", "c'est con", True),
    ("con", "C.O.N", True),
    ("pute", "la réputation", False),
    ("pute", "dispute", False),
    ("cul", "ridicule", False),
    ("cul", "reculer", False),
    ("ass", "la classe, assez", False),
    ("ass", "pass", False),
    # a number stays a number, so a term made of letters is not found in one
    ("sos", "505 erreurs", False),
    ("leet", "1337", False),
    # a phrase matches consecutive words only
    ("fils de pute", "fils de la pute", False),
    ("fils de pute", "mon fils de putois", False),
    ("sale con", "sale, con", True),
    ("sale con", "salecon", False),
]


@pytest.mark.parametrize(("term", "text", "blocked"), MATCHES)
def test_a_term_matches_disguises_and_nothing_else(term: str, text: str, blocked: bool) -> None:
    index = build_index([TermRow(term)])
    assert (index.match(text) == term) is blocked
