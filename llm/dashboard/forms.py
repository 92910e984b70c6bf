"""The dashboard's window selector: a preset span ending now, or a custom range."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django import forms

PRESETS = {
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("24 h", timedelta(hours=24)),
    "7d": ("7 days", timedelta(days=7)),
    "30d": ("30 days", timedelta(days=30)),
}
DEFAULT = "24h"
MAX_SPAN = timedelta(days=400)
INPUT_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]


@dataclass(frozen=True, slots=True)
class Span:
    key: str
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return PRESETS[self.key][0] if self.key in PRESETS else "Custom range"


class WindowForm(forms.Form):
    window = forms.ChoiceField(
        choices=[(key, label) for key, (label, _) in PRESETS.items()] + [("custom", "Custom")],
        required=False,
    )
    start = forms.DateTimeField(required=False, input_formats=INPUT_FORMATS)
    end = forms.DateTimeField(required=False, input_formats=INPUT_FORMATS)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("window") != "custom":
            return data
        start, end = data.get("start"), data.get("end")
        if start is None:
            raise forms.ValidationError("A custom range needs a start.")
        if end is not None and end <= start:
            raise forms.ValidationError("The range must end after it starts.")
        if end is not None and end - start > MAX_SPAN:
            raise forms.ValidationError(f"A range is at most {MAX_SPAN.days} days.")
        return data

    def span(self, now: datetime) -> Span:
        """The chosen window; the default one when the form is invalid or empty."""
        data = self.cleaned_data if self.is_valid() else {}
        key = data.get("window") or DEFAULT
        if key == "custom":
            end = min(data.get("end") or now, now)
            start = min(data["start"], end - timedelta(minutes=1))
            return Span(key, start, end)
        return Span(key, now - PRESETS[key][1], now)
