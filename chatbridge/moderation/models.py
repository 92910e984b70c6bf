"""Blocked terms (admin and `!serdabot block`) and the replies held for review."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

TERM_MAX_LENGTH = 200


class BlockedTerm(models.Model):
    """A word, phrase or regular expression the bot must not say.

    With no platform and no channel it applies everywhere; with both, in that channel only.
    """

    platform = models.CharField(
        max_length=16, blank=True, help_text="Empty: every platform (with an empty channel: everywhere)."
    )
    channel = models.CharField(
        max_length=100, blank=True, help_text="Empty: every channel. Twitch: the login. Discord: the id."
    )
    term = models.CharField(
        max_length=TERM_MAX_LENGTH,
        help_text="A word or phrase (matched after normalising case, accents, look-alikes, leetspeak "
        "and spacing), or a regular expression when 'Regular expression' is ticked.",
    )
    regex = models.BooleanField("Regular expression", default=False)
    check_questions = models.BooleanField(
        "Also check questions",
        default=False,
        help_text="A question containing it is not sent to the model: the blocked phrase answers.",
    )
    added_by = models.CharField(
        max_length=100, blank=True, help_text="Who added it (from chat: the moderator)."
    )
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "channel", "term"], name="unique_blocked_term"),
        ]
        ordering = ["platform", "channel", "term"]

    def __str__(self) -> str:
        where = f"{self.platform}/{self.channel}" if self.channel else (self.platform or "everywhere")
        return f"{self.term} ({where})"

    def clean(self) -> None:
        self.term = self.term.strip()
        self.channel = (
            self.channel.strip().lstrip("#").lower() if self.platform == "twitch" else self.channel.strip()
        )
        if not self.term:
            raise ValidationError({"term": "A blocked term cannot be empty."})
        if self.channel and not self.platform:
            raise ValidationError({"platform": "A channel belongs to a platform: pick one."})
        if self.regex:
            try:
                re.compile(self.term)
            except re.error as exc:
                raise ValidationError({"term": f"Not a valid regular expression: {exc}."}) from None


class HeldReply(models.Model):
    """An answer the bot did not send; a phrase of the `blocked` intent went out instead."""

    class Reason(models.TextChoices):
        BLOCKED_TERM = "blocked_term", "Blocked term in the answer"
        BLOCKED_QUESTION = "blocked_question", "Blocked term in the question"
        PROMPT_LEAK = "prompt_leak", "Repeats the system prompt"
        MODERATION = "moderation", "Flagged by OpenAI moderation"
        MODERATION_UNAVAILABLE = "moderation_unavailable", "Moderation check failed (held, fail closed)"

    created = models.DateTimeField(default=timezone.now, db_index=True)
    platform = models.CharField(max_length=16)
    channel = models.CharField(max_length=100)
    user = models.CharField(max_length=100)
    reason = models.CharField(max_length=32, choices=Reason.choices)
    term = models.CharField(
        max_length=TERM_MAX_LENGTH,
        blank=True,
        help_text="The term that matched, or the moderation categories.",
    )
    question = models.TextField(blank=True, help_text="Kept only when HISTORY_STORE_CHAT is on.")
    answer = models.TextField(blank=True, help_text="Kept only when HISTORY_STORE_CHAT is on.")
    reviewed = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "held replies"

    def __str__(self) -> str:
        when = f"{self.created:%Y-%m-%d %H:%M}"
        return f"{when} {self.platform}/{self.channel} @{self.user}: {self.get_reason_display()}"
