"""Forms of the setup pages."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

# Twitch client ids and secrets are 30 lowercase letters and digits; allow some slack
# (and catch what a bad paste brings: spaces, quotes, "oauth:").
CREDENTIAL = re.compile(r"[A-Za-z0-9_-]{6,64}")
# Twitch logins: letters, digits and underscores, at most 25.
LOGIN = re.compile(r"[a-z0-9_]{1,25}")


class TwitchAppForm(forms.Form):
    """The Twitch application's credentials. A field the environment sets is left out."""

    client_id = forms.CharField(label=_("Client ID"), max_length=64, required=False)
    # Never rendered back: empty keeps the stored secret.
    client_secret = forms.CharField(
        label=_("Client secret"),
        max_length=64,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Leave empty to keep the stored secret."),
    )

    def __init__(self, *args: object, env_client_id: bool, env_client_secret: bool, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        if env_client_id:
            del self.fields["client_id"]
        if env_client_secret:
            del self.fields["client_secret"]

    def clean_client_id(self) -> str:
        value: str = self.cleaned_data["client_id"]
        if value and not CREDENTIAL.fullmatch(value):
            raise forms.ValidationError(
                _("A client ID is letters and digits only, as the Twitch developer console shows it.")
            )
        return value

    def clean_client_secret(self) -> str:
        value: str = self.cleaned_data["client_secret"]
        if value and not CREDENTIAL.fullmatch(value):
            raise forms.ValidationError(
                _("A client secret is letters and digits only: copy it again from the console.")
            )
        return value


class ChannelAddForm(forms.Form):
    login = forms.CharField(
        label=_("Twitch channel"),
        max_length=200,
        help_text=_("The channel's name as in its address, twitch.tv/name."),
    )

    def clean_login(self) -> str:
        value: str = self.cleaned_data["login"].strip()
        # A pasted address works too: https://www.twitch.tv/name
        if "twitch.tv/" in value:
            value = value.split("twitch.tv/", 1)[1].split("/", 1)[0].split("?", 1)[0]
        value = value.lstrip("#@").lower()
        if not LOGIN.fullmatch(value):
            raise forms.ValidationError(
                _("A Twitch channel name has only letters, digits and underscores (25 at most).")
            )
        return value
