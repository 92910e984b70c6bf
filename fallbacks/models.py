from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

# Twitch drops chat messages longer than this, so a longer phrase could never be sent.
PHRASE_MAX_LENGTH = 500
# The spec's guideline: longer phrases drown the chat. The admin warns past it.
PHRASE_GUIDELINE_LENGTH = 200
PHRASE_TOO_LONG = _(
    "A phrase can have at most %(limit_value)d characters, Twitch refuses longer chat messages "
    "(this one has %(show_value)d)."
)


class Permission(models.TextChoices):
    EVERYONE = "everyone", _("Everyone")
    SUBSCRIBERS = "subscribers", _("Subscribers, VIPs and moderators")
    VIPS = "vips", _("VIPs and moderators")
    MODERATORS = "moderators", _("Moderators and the broadcaster")


class Intent(models.Model):
    slug = models.SlugField(
        _("slug"), max_length=50, unique=True, help_text=_('What the phrases answer: "ask", "chill"…')
    )
    description = models.CharField(_("description"), max_length=200, blank=True)
    enabled = models.BooleanField(
        _("enabled"),
        default=True,
        help_text=_("When off, its phrases are never used and replies come from chill."),
    )
    # A chat command `!<slug>` (and its aliases), answered from the phrases or by the model.
    command = models.BooleanField(
        _("Chat command"),
        default=True,
        db_default=True,
        help_text=_("Answer `!<slug>` and its aliases in chat. Off for the bot's own states (ask_timeout…)."),
    )
    aliases = models.CharField(
        _("aliases"),
        max_length=200,
        blank=True,
        default="",
        db_default="",
        help_text=_("Other command names, comma-separated, without the “!”."),
    )
    ask_model = models.BooleanField(
        _("Ask the model"),
        default=False,
        db_default=False,
        help_text=_(
            "Answer with the language model and the prompt below; the phrases stand in when it cannot."
        ),
    )
    prompt = models.TextField(
        _("prompt"),
        blank=True,
        default="",
        db_default="",
        help_text=_("The system prompt when “Ask the model” is on. Empty: the channel's !ask prompt."),
    )
    permission = models.CharField(
        _("Who may use it"),
        max_length=16,
        choices=Permission.choices,
        default=Permission.EVERYONE,
        db_default=Permission.EVERYONE,
    )
    user_cooldown = models.PositiveIntegerField(
        _("Cooldown per user (s)"), null=True, blank=True, help_text=_("Empty: the channel's.")
    )
    channel_cooldown = models.PositiveIntegerField(
        _("Cooldown per channel (s)"), null=True, blank=True, help_text=_("Empty: the channel's.")
    )

    class Meta:
        ordering = ["slug"]
        verbose_name = _("intent")
        verbose_name_plural = _("intents")

    def __str__(self) -> str:
        return self.slug


class Phrase(models.Model):
    intent = models.ForeignKey(
        Intent, on_delete=models.CASCADE, related_name="phrases", verbose_name=_("intent")
    )
    text = models.CharField(
        _("text"),
        max_length=PHRASE_MAX_LENGTH,
        error_messages={"max_length": PHRASE_TOO_LONG},
        help_text=format_lazy(
            _("Sent after “@user ”. Keep it under {length} characters."), length=PHRASE_GUIDELINE_LENGTH
        ),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    language = models.CharField(
        _("language"),
        max_length=8,
        blank=True,
        choices=[("", _("Any")), ("fr", _("French")), ("en", _("English"))],
        # In the database too: rows written by SQL (or by a process still on the previous
        # version during an upgrade) get "any language", not an error.
        default="",
        db_default="",
        help_text=_("Channels in another language skip it while the intent has phrases in theirs."),
    )

    class Meta:
        ordering = ["id"]
        verbose_name = _("phrase")
        verbose_name_plural = _("phrases")
        constraints = [
            models.UniqueConstraint(fields=["intent", "text"], name="fallbacks_phrase_unique_per_intent"),
        ]

    def __str__(self) -> str:
        return self.text if len(self.text) <= 60 else f"{self.text[:59]}…"

    def clean(self) -> None:
        # Blank=False only refuses "", and a reply of spaces would look like a silent bot.
        if self.text and not self.text.strip():
            raise ValidationError({"text": gettext("A phrase cannot be only spaces.")})
