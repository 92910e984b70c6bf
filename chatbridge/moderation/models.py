"""Blocked terms (admin and `!serdabot block`) and the replies held for review."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

TERM_MAX_LENGTH = 200


class BlockedTerm(models.Model):
    """A word, phrase or regular expression the bot must not say.

    With no platform and no channel it applies everywhere; with both, in that channel only.
    """

    platform = models.CharField(
        _("platform"),
        max_length=16,
        blank=True,
        help_text=_("Empty: every platform (with an empty channel: everywhere)."),
    )
    channel = models.CharField(
        _("channel"),
        max_length=100,
        blank=True,
        help_text=_("Empty: every channel. Twitch: the login. Discord: the id."),
    )
    term = models.CharField(
        _("term"),
        max_length=TERM_MAX_LENGTH,
        help_text=_(
            "A word or phrase (matched after normalising case, accents, look-alikes, leetspeak "
            "and spacing), or a regular expression when 'Regular expression' is ticked."
        ),
    )
    regex = models.BooleanField(_("Regular expression"), default=False)
    check_questions = models.BooleanField(
        _("Also check questions"),
        default=False,
        help_text=_("A question containing it is not sent to the model: the blocked phrase answers."),
    )
    added_by = models.CharField(
        _("added by"), max_length=100, blank=True, help_text=_("Who added it (from chat: the moderator).")
    )
    created = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "channel", "term"], name="unique_blocked_term"),
        ]
        ordering = ["platform", "channel", "term"]
        verbose_name = _("blocked term")
        verbose_name_plural = _("blocked terms")

    def __str__(self) -> str:
        where = (
            f"{self.platform}/{self.channel}" if self.channel else (self.platform or gettext("everywhere"))
        )
        return f"{self.term} ({where})"

    def clean(self) -> None:
        self.term = self.term.strip()
        self.channel = (
            self.channel.strip().lstrip("#").lower() if self.platform == "twitch" else self.channel.strip()
        )
        if not self.term:
            raise ValidationError({"term": _("A blocked term cannot be empty.")})
        if self.channel and not self.platform:
            raise ValidationError({"platform": _("A channel belongs to a platform: pick one.")})
        if self.regex:
            try:
                re.compile(self.term)
            except re.error as exc:
                raise ValidationError(
                    {"term": gettext("Not a valid regular expression: %(error)s.") % {"error": exc}}
                ) from None


class HeldReply(models.Model):
    """An answer the bot did not send; a phrase of the `blocked` intent went out instead."""

    class Reason(models.TextChoices):
        BLOCKED_TERM = "blocked_term", _("Blocked term in the answer")
        BLOCKED_QUESTION = "blocked_question", _("Blocked term in the question")
        PROMPT_LEAK = "prompt_leak", _("Repeats the system prompt")
        MODERATION = "moderation", _("Flagged by OpenAI moderation")
        MODERATION_UNAVAILABLE = "moderation_unavailable", _("Moderation check failed (held, fail closed)")

    created = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    platform = models.CharField(_("platform"), max_length=16)
    channel = models.CharField(_("channel"), max_length=100)
    user = models.CharField(_("user"), max_length=100)
    reason = models.CharField(_("reason"), max_length=32, choices=Reason.choices)
    term = models.CharField(
        _("term"),
        max_length=TERM_MAX_LENGTH,
        blank=True,
        help_text=_("The term that matched, or the moderation categories."),
    )
    question = models.TextField(
        _("question"), blank=True, help_text=_("Kept only when HISTORY_STORE_CHAT is on.")
    )
    answer = models.TextField(
        _("answer"), blank=True, help_text=_("Kept only when HISTORY_STORE_CHAT is on.")
    )
    reviewed = models.BooleanField(_("reviewed"), default=False)

    class Meta:
        ordering = ["-created"]
        verbose_name = _("held reply")
        verbose_name_plural = _("held replies")

    def __str__(self) -> str:
        when = f"{self.created:%Y-%m-%d %H:%M}"
        return f"{when} {self.platform}/{self.channel} @{self.user}: {self.get_reason_display()}"
