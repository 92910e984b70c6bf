"""Server-side SVG charts: nothing to load in the browser, readable without JavaScript.

Every chart scales to its container (viewBox + width 100%); hover text is an SVG
<title>, which browsers show as a tooltip and screen readers read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from llm.dashboard.buckets import Buckets
from llm.dashboard.series import REPLY, Aggregates, percentiles
from llm.models import Probe, Source

HEARTBEAT_SLOTS = 60
BAR, GAP, BEAT_HEIGHT = 8, 3, 30
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 600, 180, 44, 22, 8
SOURCES = (Source.LOCAL, Source.OPENAI, Source.FALLBACK)


def when(moment: datetime, *, seconds: bool = True) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def beat_title(probe: Probe) -> str:
    # static/llm/dashboard.js draws the live ones the same way.
    if probe.ok:
        up = _("up")
        latency = f"{probe.latency_ms:.0f} ms" if probe.latency_ms is not None else _("ok")
        return f"{when(probe.created)} · {up} · {latency}"
    down, error = _("down"), probe.error or _("error")
    detail = f": {probe.detail}" if probe.detail else ""
    return f"{when(probe.created)} · {down} · {error}{detail}"


def counted(n: int, unit: str) -> str:
    """What a latency point was measured over, e.g. 3 probes or 1 reply."""
    if unit == "replies":
        return ngettext("%(n)d reply", "%(n)d replies", n) % {"n": n}
    return ngettext("%(n)d probe", "%(n)d probes", n) % {"n": n}


def heartbeat(tier: str, probes: Sequence[Probe], slots: int = HEARTBEAT_SLOTS) -> SafeString:
    """One bar per probe, newest on the right; the page's script appends live ones."""
    width = slots * (BAR + GAP) - GAP
    offset = slots - len(probes[-slots:])
    bars = []
    for index, probe in enumerate(probes[-slots:]):
        state = "up" if probe.ok else "down"
        x = (offset + index) * (BAR + GAP)
        bars.append(
            f'<rect class="beat {state}" x="{x}" y="0" width="{BAR}" height="{BEAT_HEIGHT}" rx="2">'
            f"<title>{escape(beat_title(probe))}</title></rect>"
        )
    label = _("Recent probes of %(tier)s") % {"tier": tier}
    return mark_safe(
        f'<svg class="heartbeat" data-heartbeat="{escape(tier)}" data-slots="{slots}" data-bar="{BAR}" '
        f'data-gap="{GAP}" viewBox="0 0 {width} {BEAT_HEIGHT}" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label)}">{"".join(bars)}</svg>'
    )


def _nice_ceiling(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


@dataclass(frozen=True, slots=True)
class LatencyPoint:
    number: int  # the bucket
    p50: float
    p95: float
    count: int


def _slot(buckets: Buckets) -> float:
    return (WIDTH - LEFT) / max(len(buckets), 1)


def _x(buckets: Buckets, number: int) -> float:
    """The middle of a bucket's slot: lines and bars line up."""
    return LEFT + (number + 0.5) * _slot(buckets)


def _y(value: float, top: float) -> float:
    return TOP + (HEIGHT - BOTTOM - TOP) * (1 - value / top)


def _frame(buckets: Buckets, top: float, unit: str) -> list[str]:
    """Grid lines with their values, and the window's start, middle and end times."""
    parts = []
    for fraction in (0.0, 0.5, 1.0):
        value = top * fraction
        y = _y(value, top)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{value:g}{unit}</text>'
        )
    fmt = {"minute": "%H:%M", "hour": "%d/%m %Hh"}.get(buckets.unit, "%d/%m/%Y")
    numbers = buckets.numbers()
    for number, anchor in (
        (numbers[0], "start"),
        (numbers[len(numbers) // 2], "middle"),
        (numbers[-1], "end"),
    ):
        label = timezone.localtime(buckets.start_of(number)).strftime(fmt)
        parts.append(
            f'<text class="axis" x="{_x(buckets, number):.1f}" y="{HEIGHT - 6}" '
            f'text-anchor="{anchor}">{label}</text>'
        )
    return parts


def _svg(label: str, parts: Iterable[str]) -> SafeString:
    return mark_safe(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">'
        f"{''.join(parts)}</svg>"
    )


def latency(label: str, buckets: Buckets, points: Sequence[LatencyPoint], unit: str = "probes") -> SafeString:
    """p50 and p95 latency per bucket; a bucket without rows breaks the lines."""
    top = _nice_ceiling(max((p.p95 for p in points), default=0.0))
    parts = _frame(buckets, top, " ms")
    by_number = {p.number: p for p in points}
    for name in ("p95", "p50"):
        path, previous = [], None
        for number in buckets.numbers():
            point = by_number.get(number)
            if point is None:
                continue
            command = "L" if previous == number - 1 else "M"
            path.append(f"{command}{_x(buckets, number):.1f},{_y(getattr(point, name), top):.1f}")
            previous = number
        if path:
            parts.append(f'<path class="line {name}" d="{" ".join(path)}"/>')
    for number, point in sorted(by_number.items()):
        title = (
            f"{when(buckets.start_of(number), seconds=False)} · p50 {point.p50:.0f} ms"
            f" · p95 {point.p95:.0f} ms · {counted(point.count, unit)}"
        )
        parts.append(
            f'<circle class="dot" cx="{_x(buckets, number):.1f}" cy="{_y(point.p95, top):.1f}" r="3">'
            f"<title>{escape(title)}</title></circle>"
        )
    return _svg(label, parts)


def latency_points(data: Aggregates, series: str, key: str) -> list[LatencyPoint]:
    """p50 and p95 per bucket of one series, from its histograms."""
    points = []
    for number, tally in sorted(data.cells.get((series, key), {}).items()):
        p50, p95 = percentiles(tally)
        if p50 is not None and p95 is not None:
            points.append(LatencyPoint(number, p50, p95, sum(tally.hist)))
    return points


def reply_counts(data: Aggregates) -> dict[int, dict[str, int]]:
    """bucket -> source -> replies."""
    counts: dict[int, dict[str, int]] = {}
    for source in SOURCES:
        for number, tally in data.cells.get((REPLY, source.value), {}).items():
            counts.setdefault(number, {})[source.value] = tally.count
    return counts


def replies(buckets: Buckets, counts: dict[int, dict[str, int]]) -> SafeString:
    """Stacked bars: replies per bucket by source (local at the bottom, fallbacks on top)."""
    top = _nice_ceiling(max((sum(c.values()) for c in counts.values()), default=0))
    parts = _frame(buckets, top, "")
    width = max(_slot(buckets) - 1, 1)
    for number, per_source in sorted(counts.items()):
        x = _x(buckets, number) - width / 2
        base = 0
        pieces = []
        for source in SOURCES:
            n = per_source.get(source, 0)
            if not n:
                continue
            y, y0 = _y(base + n, top), _y(base, top)
            pieces.append(
                f'<rect class="bar {source}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{width:.1f}" height="{y0 - y:.1f}"/>'
            )
            base += n
        title = f"{when(buckets.start_of(number), seconds=False)} · " + ", ".join(
            f"{source}: {per_source.get(source, 0)}" for source in SOURCES
        )
        parts.append(f"<g><title>{escape(title)}</title>{''.join(pieces)}</g>")
    return _svg(_("Replies by source"), parts)
