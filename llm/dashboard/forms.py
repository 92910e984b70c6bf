"""The dashboard's window selector: a preset span ending now, or a custom range in local time.

Custom times are read in TIME_ZONE (Django's DateTimeField does so with USE_TZ): a time
that does not exist there (the hour skipped when clocks go forward) is refused with a
clear error rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django import forms
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

PRESETS: dict[str, tuple[Promise, timedelta]] = {
    "1h": (_("Last hour"), timedelta(hours=1)),
    "24h": (_("24 h"), timedelta(hours=24)),
    "7d": (_("7 days"), timedelta(days=7)),
    "30d": (_("30 days"), timedelta(days=30)),
    "90d": (_("90 days"), timedelta(days=90)),
    "365d": (_("1 year"), timedelta(days=365)),
}
DEFAULT = "24h"
MAX_SPAN = timedelta(days=400)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
INPUT_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]


@dataclass(frozen=True, slots=True)
class Span:
    key: str
    start: datetime
    end: datetime
    console: bool = False  # console runs (`manage.py chat`) counted too

    @property
    def label(self) -> str:
        return str(PRESETS[self.key][0]) if self.key in PRESETS else str(_("Custom range"))


class WindowForm(forms.Form):
    window = forms.ChoiceField(
        choices=[(key, label) for key, (label, _span) in PRESETS.items()] + [("custom", _("Custom"))],
        required=False,
    )
    console = forms.BooleanField(required=False, label=_("Include console runs"))
    start = forms.DateTimeField(required=False, input_formats=INPUT_FORMATS)
    end = forms.DateTimeField(required=False, input_formats=INPUT_FORMATS)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("window") != "custom":
            return data
        start, end = data.get("start"), data.get("end")
        if start is None:
            raise forms.ValidationError(_("A custom range needs a start."))
        if start < EARLIEST or (end is not None and end < EARLIEST):
            # Long before any history; and year 1 would overflow the time-zone arithmetic.
            raise forms.ValidationError(_("A range starts in 2000 or later."))
        if end is not None and end <= start:
            raise forms.ValidationError(_("The range must end after it starts."))
        if end is not None and end - start > MAX_SPAN:
            raise forms.ValidationError(_("A range is at most %(days)d days.") % {"days": MAX_SPAN.days})
        return data

    def span(self, now: datetime) -> Span:
        """The chosen window; the default one when the form is invalid or empty."""
        data = self.cleaned_data if self.is_valid() else {}
        key = data.get("window") or DEFAULT
        console = bool(data.get("console"))
        if key == "custom":
            end = min(data.get("end") or now, now)
            start = min(data["start"], end - timedelta(minutes=1))
            # A range longer than allowed keeps its end: the latest part is what was looked for.
            return Span(key, max(start, end - MAX_SPAN), end, console)
        return Span(key, now - PRESETS[key][1], now, console)
