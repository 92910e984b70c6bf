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


class Permission(models.TextChoices):
    EVERYONE = "everyone", "Everyone"
    SUBSCRIBERS = "subscribers", "Subscribers, VIPs and moderators"
    VIPS = "vips", "VIPs and moderators"
    MODERATORS = "moderators", "Moderators and the broadcaster"


class Intent(models.Model):
    slug = models.SlugField(max_length=50, unique=True, help_text='What the phrases answer: "ask", "chill"…')
    description = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(
        default=True, help_text="When off, its phrases are never used and replies come from chill."
    )
    # A chat command `!<slug>` (and its aliases), answered from the phrases or by the model.
    command = models.BooleanField(
        "Chat command",
        default=True,
        db_default=True,
        help_text="Answer `!<slug>` and its aliases in chat. Off for the bot's own states (ask_timeout…).",
    )
    aliases = models.CharField(
        max_length=200,
        blank=True,
        default="",
        db_default="",
        help_text="Other command names, comma-separated, without the “!”.",
    )
    ask_model = models.BooleanField(
        "Ask the model",
        default=False,
        db_default=False,
        help_text="Answer with the language model and the prompt below; the phrases stand in when it cannot.",
    )
    prompt = models.TextField(
        blank=True,
        default="",
        db_default="",
        help_text="The system prompt when “Ask the model” is on. Empty: the channel's !ask prompt.",
    )
    permission = models.CharField(
        "Who may use it",
        max_length=16,
        choices=Permission.choices,
        default=Permission.EVERYONE,
        db_default=Permission.EVERYONE,
    )
    user_cooldown = models.PositiveIntegerField(
        "Cooldown per user (s)", null=True, blank=True, help_text="Empty: the channel's."
    )
    channel_cooldown = models.PositiveIntegerField(
        "Cooldown per channel (s)", null=True, blank=True, help_text="Empty: the channel's."
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
    language = models.CharField(
        max_length=8,
        blank=True,
        choices=[("", "Any"), ("fr", "French"), ("en", "English")],
        # In the database too: rows written by SQL (or by a process still on the previous
        # version during an upgrade) get "any language", not an error.
        default="",
        db_default="",
        help_text="Channels in another language skip it while the intent has phrases in theirs.",
    )

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
