"""CSV rows of the history over a window: probes, calls and incidents.

Times are ISO 8601 in TIME_ZONE with their offset (2026-10-25T02:30:00+01:00): a
spreadsheet sorts them, and the hour repeated when clocks go back stays two hours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from llm.dashboard import availability
from llm.history.scopes import CONSOLE_ROLES
from llm.models import CascadeCall, Probe, Scope
from serdabot.redact import redact

Rows = tuple[list[str], Iterable[list[object]]]
Export = Callable[[datetime, datetime, tuple[str, ...]], Rows]

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection"):
# an LLM server's error text such as `=HYPERLINK("http://x","y")` would become a live link.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _iso(moment: datetime | None) -> str:
    return timezone.localtime(moment).isoformat() if moment else ""


def _scoped(query: QuerySet, scopes: tuple[str, ...]) -> QuerySet:  # type: ignore[type-arg]
    return query if Scope.CONSOLE.value in scopes else query.exclude(role__in=CONSOLE_ROLES)


def probes(start: datetime, end: datetime, scopes: tuple[str, ...]) -> Rows:
    header = ["created", "tier", "kind", "ok", "latency_ms", "error", "detail", "role"]
    query = (
        _scoped(Probe._default_manager.filter(created__gte=start, created__lt=end), scopes)
        .order_by("created", "pk")
        .values_list(*header)
    )

    def rows() -> Iterator[list[object]]:
        for created, tier, kind, ok, latency, error, detail, role in query.iterator(chunk_size=5000):
            yield [
                _iso(created),
                tier,
                kind,
                int(ok),
                "" if latency is None else f"{latency:.1f}",
                # Redacted when read too: rows stored before redaction existed may hold a key.
                redact(error),
                redact(detail),
                role,
            ]

    return header, rows()


def calls(start: datetime, end: datetime, scopes: tuple[str, ...]) -> Rows:
    # Chat text and user names stay out of the export even when HISTORY_STORE_CHAT keeps them.
    # The header names the columns read, in their order.
    header = ["created", "platform", "channel", "intent", "source"]
    header += ["latency_ms", "first_token_ms", "timed_out", "errors"]
    query = (
        _scoped(CascadeCall._default_manager.filter(created__gte=start, created__lt=end), scopes)
        .order_by("created", "pk")
        .values_list(*header)
    )

    def rows() -> Iterator[list[object]]:
        for created, platform, channel, intent, source, latency, first, timed_out, errors in query.iterator(
            chunk_size=5000
        ):
            encoded = redact(json.dumps(errors, sort_keys=True)) if errors else ""
            yield [
                _iso(created),
                platform,
                channel,
                intent,
                source,
                f"{latency:.1f}",
                "" if first is None else f"{first:.1f}",
                int(timed_out),
                encoded,
            ]

    return header, rows()


def incidents(start: datetime, end: datetime, scopes: tuple[str, ...]) -> Rows:
    header = [
        "tier",
        "start",
        "end",
        "ongoing",
        "duration_s",
        "downtime_in_window_s",
        "state",
        "error",
        "detail",
        "role",
    ]
    now = timezone.now()
    found = availability.Availability(scopes, now).incidents_in(start, end)
    rows = [
        [
            i.tier,
            _iso(i.start),
            _iso(i.end),
            int(i.ongoing),
            round(i.duration(now).total_seconds()),
            round(i.overlap(start, end, now).total_seconds()),
            i.state,
            # Redacted when read too: rows stored before redaction existed may hold a key.
            redact(i.error),
            redact(i.detail),
            i.role,
        ]
        for i in reversed(found)
    ]
    return header, rows


def neutralise(cell: object) -> object:
    """A text cell a spreadsheet would run as a formula, made plain text by a leading quote.

    Numbers stay as they are: `-1.5` is a number, not a formula, and needs no quote.
    """
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS) and not NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def _neutralised(export: Export) -> Export:
    def rows_of(start: datetime, end: datetime, scopes: tuple[str, ...]) -> Rows:
        header, rows = export(start, end, scopes)
        return header, ([neutralise(cell) for cell in row] for row in rows)

    return rows_of


# Every export goes through `neutralise`, cell by cell: whatever a future column holds.
EXPORTS: dict[str, Export] = {
    "probes": _neutralised(probes),
    "calls": _neutralised(calls),
    "incidents": _neutralised(incidents),
}
