"""Admin for the blocked terms and the answers held for review (imported by chatbridge/admin.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from chatbridge.moderation.manage import problem
from chatbridge.moderation.models import BlockedTerm, HeldReply
from chatbridge.moderation.normalize import normalize

# Django's admin and form classes are generic only in django-stubs.
if TYPE_CHECKING:
    BlockedTermFormBase = forms.ModelForm[BlockedTerm]
    BlockedTermAdminBase = admin.ModelAdmin[BlockedTerm]
    HeldReplyAdminBase = admin.ModelAdmin[HeldReply]
else:
    BlockedTermFormBase = forms.ModelForm
    BlockedTermAdminBase = HeldReplyAdminBase = admin.ModelAdmin

MATCHING_HELP = _(
    "Answers (and, when ticked, questions) are compared after normalisation: lowercase, no accents, "
    "look-alike letters read as Latin ones (Cyrillic а, Greek ο, fullwidth ｃ), leetspeak read as letters "
    "inside a word (c0nn4rd, $, @; a number alone stays a number), punctuation inside a word removed "
    "(c.o.n), single letters spaced out joined (c o n). A word blocks the whole word only: “con” blocks "
    "“c0n” and “c o n” but not “conseil” nor “second”, nor the plural “cons”. A phrase blocks those words "
    "in a row. A regular expression (Python syntax) is searched in the normalised text: lowercase letters "
    "and digits, words separated by single spaces, no punctuation and no accents. Patterns that match an "
    "empty text or nest repetitions, like (a+)+, are refused: they would hold every answer or stall the bot."
)


class BlockedTermForm(BlockedTermFormBase):
    class Meta:
        model = BlockedTerm
        fields = ["term", "regex", "check_questions", "platform", "channel", "added_by"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        term = str(data.get("term") or "").strip()
        if term:
            refused = problem(term, bool(data.get("regex")))
            if refused:
                self.add_error("term", gettext("Cannot block this: %(problem)s.") % {"problem": refused})
        return data


@admin.register(BlockedTerm)
class BlockedTermAdmin(BlockedTermAdminBase):
    form = BlockedTermForm
    list_display = [
        "term",
        "normalised",
        "regex",
        "check_questions",
        "platform",
        "channel",
        "added_by",
        "created",
    ]
    list_filter = ["regex", "check_questions", "platform"]
    search_fields = ["term", "channel", "added_by"]
    fieldsets = [
        (None, {"description": MATCHING_HELP, "fields": ["term", "regex", "check_questions"]}),
        (
            _("Where"),
            {
                "description": _(
                    "Leave both empty for every channel. Moderators add a channel's own terms "
                    "from chat with !serdabot block <term> (a regular expression between slashes: /c[o0]n+/)."
                ),
                "fields": ["platform", "channel"],
            },
        ),
        (_("Origin"), {"fields": ["added_by"]}),
    ]

    @admin.display(description=_("Compared as"))
    def normalised(self, obj: BlockedTerm) -> str:
        return gettext("(regular expression)") if obj.regex else normalize(obj.term)


@admin.register(HeldReply)
class HeldReplyAdmin(HeldReplyAdminBase):
    list_display = ["created", "platform", "channel", "user", "reason", "term", "reviewed"]
    list_filter = ["reviewed", "reason", "platform", "created"]
    search_fields = ["channel", "user", "term"]
    date_hierarchy = "created"
    fields = ["created", "platform", "channel", "user", "reason", "term", "question", "answer", "reviewed"]
    readonly_fields = ["created", "platform", "channel", "user", "reason", "term", "question", "answer"]
    actions = ["mark_reviewed", "mark_unreviewed"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # written by the bot only

    @admin.action(description=_("Mark selected held replies as reviewed"))
    def mark_reviewed(self, request: HttpRequest, queryset: QuerySet[HeldReply]) -> None:
        count = queryset.update(reviewed=True)
        self.message_user(
            request,
            ngettext(
                "Marked %(count)d held reply as reviewed.",
                "Marked %(count)d held replies as reviewed.",
                count,
            )
            % {"count": count},
        )

    @admin.action(description=_("Mark selected held replies as not reviewed"))
    def mark_unreviewed(self, request: HttpRequest, queryset: QuerySet[HeldReply]) -> None:
        count = queryset.update(reviewed=False)
        self.message_user(
            request,
            ngettext(
                "Marked %(count)d held reply as not reviewed.",
                "Marked %(count)d held replies as not reviewed.",
                count,
            )
            % {"count": count},
            messages.INFO,
        )
