"""Formatting for the dashboard: durations and percentages a streamer reads at a glance."""

from __future__ import annotations

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def duration(value: timedelta | None) -> str:
    """'45 s', '3 min 20 s', '30 min', '2 h 05 min', '2 h', '3 d 4 h'."""
    if value is None:
        return "—"
    seconds = max(int(value.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {seconds:02d} s" if seconds else f"{minutes} min"
    return f"{seconds} s"


@register.filter
def percent(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    # 99.996 % must not read as 100 %: only a perfect record shows 100.
    text = f"{value:.{digits}f}"
    if value < 100 and float(text) >= 100:
        text = f"{100 - 10**-digits:.{digits}f}"
    return f"{text} %"


@register.filter
def ms(value: float | None) -> str:
    """'—', '850 ms', '1.2 s', '12 s'."""
    if value is None:
        return "—"
    if value < 1000:
        return f"{value:.0f} ms"
    return f"{value / 1000:.1f} s" if value < 10_000 else f"{value / 1000:.0f} s"
