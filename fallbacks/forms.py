"""The admin's forms for intents and phrases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.utils.translation import gettext_lazy as _

from fallbacks.commands import aliases_of, parse_aliases
from fallbacks.models import PHRASE_TOO_LONG, Intent, Phrase

# Django's form classes are generic only in django-stubs; django-stubs-ext (which would
# make them subscriptable at runtime) is not a runtime dependency.
if TYPE_CHECKING:
    IntentFormBase = forms.ModelForm[Intent]
    PhraseFormBase = forms.ModelForm[Phrase]
else:
    IntentFormBase = PhraseFormBase = forms.ModelForm


class PhraseForm(PhraseFormBase):
    class Meta:
        model = Phrase
        fields = ["intent", "text", "language", "enabled"]
        # The form checks the length before the model does, so it needs the same clear message.
        error_messages = {"text": {"max_length": PHRASE_TOO_LONG}}
        widgets = {"text": forms.Textarea(attrs={"rows": 2, "cols": 90})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The field's max_length puts a maxlength on the textarea, and a browser silently cuts
        # a longer paste to fit: the streamer would save a truncated phrase without a word.
        # The length is still checked here, on the server, with a message naming it.
        self.fields["text"].widget.attrs.pop("maxlength", None)


class IntentForm(IntentFormBase):
    class Meta:
        model = Intent
        fields = "__all__"
        widgets = {
            "aliases": forms.TextInput(attrs={"size": 60, "placeholder": "discord, dc"}),
            "prompt": forms.Textarea(attrs={"rows": 4, "cols": 90}),
        }

    def clean_aliases(self) -> str:
        # Stored normalised, so the cache, the collision check and chat all read the same names.
        names, invalid = parse_aliases(self.cleaned_data.get("aliases") or "")
        if any("!" in entry for entry in invalid):
            raise forms.ValidationError(_("Write the aliases without the “!”, e.g. “discord, dc”."))
        if invalid:
            raise forms.ValidationError(
                _(
                    "Not a command name: %(names)s. Use letters, digits, _ and -, "
                    "and separate the names with commas."
                )
                % {"names": ", ".join(invalid)}
            )
        normalised = ", ".join(names)
        limit = Intent._meta.get_field("aliases").max_length or 0
        if len(normalised) > limit:  # ", " between names can make the text longer than typed
            raise forms.ValidationError(
                _("Too many aliases: at most %(limit)d characters once separated by “, ”.") % {"limit": limit}
            )
        return normalised

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        slug = (cleaned.get("slug") or "").lower()
        if "aliases" in cleaned and slug:
            # The slug is already the command's name: listing it again changes nothing.
            cleaned["aliases"] = ", ".join(name for name in aliases_of(cleaned["aliases"]) if name != slug)
        return cleaned
