"""`!serdabot block <term>` and `!serdabot unblock <term>`: a channel's own blocked terms.

A term written between slashes, `/c[o0]n+ard/`, is a regular expression; anything else
is a word or phrase, compared after normalisation (so unblocking `Connard` removes
`connard`). A moderator only touches their channel's terms: global ones are the admin's.
Saving or deleting reloads every process's terms (chatbridge/moderation/signals.py).

Both are sync (database work: call them through sync_to_async) and let a DatabaseError
through, so the caller can say the database did not answer rather than "not found".
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from chatbridge.moderation.models import TERM_MAX_LENGTH, BlockedTerm
from chatbridge.moderation.normalize import normalize
from chatbridge.moderation.patterns import regex_problem
from chatbridge.moderation.terms import scope_of

# Why block() refused, for the caller to put in its own words (a regex error adds details).
EMPTY = "empty term"
TOO_LONG = f"too long ({TERM_MAX_LENGTH} characters at most)"
NOTHING_TO_MATCH = "nothing left to match once normalised (it needs letters or digits)"
ALREADY_BLOCKED = "already blocked"


def parse(term: str) -> tuple[str, bool]:
    """(the term or pattern, whether it is a regular expression) as a moderator wrote it."""
    term = term.strip()
    if len(term) >= 3 and term[0] == "/" and term[-1] == "/":
        return term[1:-1], True
    return term, False


def problem(term: str, regex: bool) -> str:
    """Why `term` cannot be blocked; "" when it can."""
    if not term.strip():
        return EMPTY
    if len(term) > TERM_MAX_LENGTH:
        return TOO_LONG
    if regex:
        return regex_problem(term)
    return "" if normalize(term) else NOTHING_TO_MATCH


def block(platform: str, channel: str, term: str, by: str) -> tuple[bool, str]:
    """Block `term` in this channel: (True, the term as stored) or (False, why not)."""
    pattern, regex = parse(term)
    refused = problem(pattern, regex)
    if refused:
        return False, refused
    platform, channel = scope_of(platform, channel)
    # Blocked here already, or more widely (everywhere, or on the whole platform).
    wider = (
        Q(platform="", channel="") | Q(platform=platform, channel="") | Q(platform=platform, channel=channel)
    )
    if _same(BlockedTerm.objects.filter(wider, regex=regex), pattern, regex):
        return False, ALREADY_BLOCKED
    try:
        with transaction.atomic():
            BlockedTerm.objects.create(
                platform=platform, channel=channel, term=pattern, regex=regex, added_by=by.strip()[:100]
            )
    except IntegrityError:  # another moderator, at the same moment
        return False, ALREADY_BLOCKED
    return True, pattern


def unblock(platform: str, channel: str, term: str) -> bool:
    """Unblock `term` in this channel; False when this channel has no such term."""
    pattern, regex = parse(term)
    platform, channel = scope_of(platform, channel)
    if not channel:
        return False  # never the global or platform-wide terms from a chat
    rows = _same(BlockedTerm.objects.filter(platform=platform, channel=channel, regex=regex), pattern, regex)
    for row in rows:
        row.delete()
    return bool(rows)


def _same(rows: QuerySet[BlockedTerm], pattern: str, regex: bool) -> list[BlockedTerm]:
    """The rows that block what `pattern` blocks: the same regex, or the same normalised words."""
    if regex:
        return [row for row in rows if row.term == pattern]
    wanted = normalize(pattern)
    return [row for row in rows if normalize(row.term) == wanted]
