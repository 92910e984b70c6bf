"""Links out of the model's answers, for channels that do not allow them.

A link is anything with a scheme (`https://…`), anything starting `www.`, a bare
domain on a common top-level domain (`discord.gg/abc`, `exemple.fr`) and an e-mail
address on one. File names a
geek channel talks about (`main.py`, `README.md`, `node.js`) are not links: those
top-level domains are left out on purpose. A Markdown link keeps its text.
"""

from __future__ import annotations

import re

# Common TLDs only: .py .md .sh .js .rs .ts ... are file extensions far more often than sites.
_TLDS = (
    "com|net|org|fr|be|ch|ca|uk|de|eu|es|it|nl|io|gg|ly|tv|co|me|xyz|info|app|dev|link|live|"
    "site|online|shop|store|club|top|ru|cn|gl|gd|to|cc|biz|tk|ml|ga|cf|gq|ws|su"
)
_LINK = re.compile(
    r"""
    \b(?:[a-z][a-z0-9+.-]*://|www\.)\S+                                    # scheme or www.
    | (?:[\w.+-]+@)?\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:"""
    + _TLDS
    + r""")\b(?![\w-]|\.\w)(?:[/?#:]\S*)?                                      # bare domain, e-mail
    """,
    re.IGNORECASE | re.VERBOSE,
)
# What every link holds: a scheme, www. or a dot before a known TLD.
_MAYBE = re.compile(r"://|www\.|\.(?:" + _TLDS + r")\b", re.IGNORECASE)
_MARKDOWN = re.compile(r"\[([^\]\n]*)\]\(\s*[^)\s]+\s*\)")
# Punctuation that ends a sentence, not the link it follows.
_TRAILING = ".,;:!?)]}>'\"»…"
_SPACES = re.compile(r"[ \t]{2,}")
# Only where English and French agree: French puts a space before ; : ! ?
_BEFORE_PUNCTUATION = re.compile(r" +([.,)\]])")
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]|<\s*>")


def strip_links(text: str) -> str:
    """`text` without its links (their sentence punctuation kept), spacing tidied."""
    if not _MAYBE.search(text):
        return text  # the common case: one quick scan, not the full pattern at every position
    text = _MARKDOWN.sub(r"\1", text)
    stripped = _LINK.sub(_keep_trailing, text)
    if stripped == text:
        return text
    stripped = _EMPTY_BRACKETS.sub("", stripped)
    stripped = _BEFORE_PUNCTUATION.sub(r"\1", _SPACES.sub(" ", stripped))
    return stripped.strip()


def _keep_trailing(match: re.Match[str]) -> str:
    link = match.group(0)
    kept = link.rstrip(_TRAILING)
    # A closing bracket that the link opened belongs to it (wikipedia.org/wiki/Foo_(bar)).
    while link[len(kept) : len(kept) + 1] == ")" and kept.count("(") > kept.count(")"):
        kept += ")"
    return link[len(kept) :]
