"""Forms of the Discord setup page."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

# A bot token is three dot-separated parts of URL-safe base64; no spaces.
TOKEN = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+){2}")
SNOWFLAKE = re.compile(r"[0-9]{1,20}")
BOT_PREFIX = re.compile(r"^bot\s+", re.IGNORECASE)


class DiscordTokenForm(forms.Form):
    # Never rendered back.
    token = forms.CharField(
        label=_("Bot token"),
        max_length=200,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Developer Portal → your application → Bot → Reset Token, then copy it here."),
    )

    def clean_token(self) -> str:
        value: str = self.cleaned_data["token"]
        # "Bot xxx" as in an Authorization header, pasted whole (in whatever case).
        value = BOT_PREFIX.sub("", value, count=1)
        if not TOKEN.fullmatch(value):
            # Not the value: a message holding part of a secret would be one more place it shows.
            raise forms.ValidationError(
                _("This does not look like a bot token (three parts separated by dots). Copy it again.")
            )
        return value
