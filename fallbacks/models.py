from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

# Twitch drops chat messages longer than this, so a longer phrase could never be sent.
PHRASE_MAX_LENGTH = 500
# The spec's guideline: longer phrases drown the chat. The admin warns past it.
PHRASE_GUIDELINE_LENGTH = 200
PHRASE_TOO_LONG = (
    "A phrase can have at most %(limit_value)d characters, Twitch refuses longer chat messages "
    "(this one has %(show_value)d)."
)


class Intent(models.Model):
    slug = models.SlugField(max_length=50, unique=True, help_text='What the phrases answer: "ask", "chill"…')
    description = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(
        default=True, help_text="When off, its phrases are never used and replies come from chill."
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Phrase(models.Model):
    intent = models.ForeignKey(Intent, on_delete=models.CASCADE, related_name="phrases")
    text = models.CharField(
        max_length=PHRASE_MAX_LENGTH,
        error_messages={"max_length": PHRASE_TOO_LONG},
        help_text=f"Sent after “@user ”. Keep it under {PHRASE_GUIDELINE_LENGTH} characters.",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["intent", "text"], name="fallbacks_phrase_unique_per_intent"),
        ]

    def __str__(self) -> str:
        return self.text if len(self.text) <= 60 else f"{self.text[:59]}…"

    def clean(self) -> None:
        # Blank=False only refuses "", and a reply of spaces would look like a silent bot.
        if self.text and not self.text.strip():
            raise ValidationError({"text": "A phrase cannot be only spaces."})
