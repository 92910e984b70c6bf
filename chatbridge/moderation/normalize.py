"""Text as blocked terms see it: one spelling per word, whatever the disguise.

Both the blocked terms and the text checked go through the same steps, so a term
matches whatever way the model wrote it:

1. Compatibility forms and accents are folded (NFKD, combining marks dropped): fullwidth
   `ｃｏｎ`, mathematical `𝐜𝐨𝐧`, `côn` all read `con`. Invisible format characters
   (zero-width spaces, tag characters) are dropped.
2. Letters that look like Latin ones are read as them: Cyrillic `а е о р с`, Greek
   `α ο ρ`, small capitals `ᴄᴏɴ`. Then everything is lowercased.
3. The text is cut into words at whitespace. Inside a word, an apostrophe separates
   (`d'enculé` is `d encule`) and other punctuation is removed (`c.o.n` is `con`,
   `f-u-c-k` is `fuck`).
4. Runs of single characters join into one word: `c o n n a r d` is `connard` (digits
   at the end of a run stay numbers: `il y a 3 chats` is `il ya 3 chats`).
5. Leetspeak inside a word that has letters is read as letters: 0→o 1→i 3→e 4→a 5→s 7→t
   @→a $→s €→e (`c0nn4rd` is `connard`). A word of digits alone stays a number (`2024`).

A word term matches a whole word (never a part of one: `con` does not match `conseil`),
a phrase matches consecutive words. A few other readings are also tried for single
words: the parts of a word split at its punctuation (`sous-merde` also reads `sous`,
`merde`), 1 read as l, a leading @ read as a (`@ss`) rather than as a mention, and a
stretched word (three or more of one letter, `fuuuck`) with its repeats collapsed,
compared with terms collapsed the same way.

`normalize()` gives the words joined by single spaces: regular-expression terms are
searched in that text (lowercase, no accents, no punctuation).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Letters that look like Latin ones, upper and lower case (read before lowercasing: Greek
# Η looks like H, its lowercase η like n). Accented forms are covered: NFKD splits them first.
_LOOK_ALIKES = {
    # Cyrillic
    "А": "a", "а": "a", "В": "b", "в": "b", "Е": "e", "е": "e", "К": "k", "к": "k",
    "М": "m", "м": "m", "Н": "h", "н": "h", "О": "o", "о": "o", "Р": "p", "р": "p",
    "С": "c", "с": "c", "Т": "t", "т": "t", "У": "y", "у": "y", "Х": "x", "х": "x",
    "І": "i", "і": "i", "Ј": "j", "ј": "j", "Ѕ": "s", "ѕ": "s", "Ԁ": "d", "ԁ": "d",
    "Һ": "h", "һ": "h", "Ӏ": "l", "ӏ": "l", "Ԛ": "q", "ԛ": "q", "Ԝ": "w", "ԝ": "w",
    "Ь": "b", "ь": "b", "Г": "r", "г": "r", "П": "n", "п": "n", "Ү": "y", "ү": "y",
    # Greek
    "Α": "a", "α": "a", "Β": "b", "β": "b", "Γ": "r", "γ": "y", "Ε": "e", "ε": "e",
    "Ζ": "z", "Η": "h", "η": "n", "Ι": "i", "ι": "i", "Κ": "k", "κ": "k", "Μ": "m",
    "μ": "u", "Ν": "n", "ν": "v", "Ο": "o", "ο": "o", "Ρ": "p", "ρ": "p", "Τ": "t",
    "τ": "t", "Υ": "y", "υ": "u", "Χ": "x", "χ": "x", "ω": "w", "ϲ": "c", "Ϲ": "c",
    "ϳ": "j", "σ": "o", "ς": "c",  # also what NFKD makes of the lunate sigma ϲ
    # Latin letters NFKD leaves whole, and small capitals
    "ł": "l", "Ł": "l", "ø": "o", "Ø": "o", "đ": "d", "Đ": "d", "ħ": "h", "Ħ": "h",
    "ı": "i", "ȷ": "j", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ß": "ss", "ẞ": "ss",
    "þ": "th", "Þ": "th", "ð": "d", "Ð": "d", "ɑ": "a", "ɡ": "g", "ƅ": "b", "ƒ": "f",
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h",
    "ɪ": "i", "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p",
    "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
}  # fmt: skip
# Apostrophes separate words (French elision); they are read as a plain one.
_APOSTROPHES = "'’‘`´ʼ′"
# Where combining marks, format characters and variation selectors live.
_DROPPED_RANGES = ((0x0300, 0x3000), (0xFE00, 0xFE30), (0xFEFF, 0xFF00), (0xE0000, 0xE01F0))


def _fold_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for start, end in _DROPPED_RANGES:
        for code in range(start, end):
            if unicodedata.category(chr(code)) in ("Mn", "Me", "Cf"):
                table[code] = None
    table.update({ord(k): v for k, v in _LOOK_ALIKES.items()})
    table.update({ord(c): "'" for c in _APOSTROPHES[1:]})
    return table


_FOLD = _fold_table()
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "€": "e"}
)
# One word's pieces: letters, digits and the leetspeak symbols; anything else is punctuation.
_PIECE = re.compile(r"(?:[^\W_]|[@$€])+")
_ACCENTS = re.compile("[\u0300-\u036f]")  # the combining marks NFKD splits Latin letters into
_LETTER = re.compile(r"[^\W\d_]")
_STRETCHED = re.compile(r"(.)\1\1")
_REPEATS = re.compile(r"(.)\1+")


@dataclass(frozen=True, slots=True)
class Normalized:
    words: list[str]
    # Other readings of some words (single-word terms only): see the module docstring.
    extras: list[str]
    # Stretched words (fuuuck) with their repeats collapsed, for `squeeze(term)`.
    squeezed: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.words)


def fold(text: str) -> str:
    """Lowercase, no accents, no compatibility forms, no look-alikes, no invisible characters."""
    if text.isascii():
        return text.lower()  # English answers: nothing else to do
    text = _ACCENTS.sub("", unicodedata.normalize("NFKD", text))
    if text.isascii():
        return text.lower()  # French answers: accents were all there was
    return text.translate(_FOLD).lower()  # a per-character lookup: only for what needs it


def squeeze(word: str) -> str:
    """Every run of one character down to one: `fuuuck` and `fuck` both read `fuck`."""
    return _REPEATS.sub(r"\1", word)


def analyse(text: str) -> Normalized:
    """The words of `text` as terms see them, with the other readings to try."""
    words: list[str] = []
    extras: list[str] = []
    run: list[str] = []  # single characters waiting to be joined into one word
    for chunk in fold(text).split():
        for part in chunk.split("'") if "'" in chunk else (chunk,):
            if part.isalnum() and part.isascii():
                word = part  # the common case: a plain word, no punctuation to remove
            else:
                pieces = _PIECE.findall(part)
                if not pieces:
                    continue  # emoji or punctuation alone: nothing to read, runs go on across it
                word = "".join(pieces)
                if len(pieces) > 1:
                    extras.extend(_leet(piece, extras) for piece in pieces if len(piece) > 1)
            if len(word) == 1:
                run.append(word)
                continue
            if run:
                _join(run, words, extras)
            words.append(word if word.isalpha() else _leet(word, extras))
    if run:
        _join(run, words, extras)
    squeezed: list[str] = []
    if _STRETCHED.search(" ".join(words)) or (extras and _STRETCHED.search(" ".join(extras))):
        squeezed = [squeeze(word) for word in (*words, *extras) if _STRETCHED.search(word)]
    return Normalized(words, extras, squeezed)


def normalize(text: str) -> str:
    """The words of `text`, normalised, joined by single spaces (what regex terms search)."""
    return analyse(text).text


def _join(run: list[str], words: list[str], extras: list[str]) -> None:
    """A run of single characters as one word (`c o n` is `con`). Digits at its end stay
    numbers of their own: `il y a 3 chats` is `il ya 3 chats`, not `il yae chats`."""
    end = len(run)
    while end and run[end - 1].isdigit():
        end -= 1
    if end:
        words.append(_leet("".join(run[:end]), extras))
    words.extend(run[end:])
    run.clear()


def _leet(word: str, extras: list[str]) -> str:
    """Leetspeak read as letters in a word that has letters; other readings go to `extras`."""
    if word.isalpha() or word.isdigit() or not _LETTER.search(word):
        return word  # letters only, or a number (2024, $100): nothing to read
    read = word.translate(_LEET)
    if "1" in word:
        extras.append(word.replace("1", "l").translate(_LEET))
    if word.startswith("@"):
        # A mention (@user) rather than a disguised a (@ss): both are tried.
        extras.append(read)
        return word.lstrip("@").translate(_LEET)
    return read
