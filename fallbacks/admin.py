from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Length
from django.http import HttpRequest

from fallbacks.models import PHRASE_GUIDELINE_LENGTH, PHRASE_TOO_LONG, Intent, Phrase
from fallbacks.signals import schedule_reload

# Django's admin and form classes are generic only in django-stubs; django-stubs-ext
# (which would make them subscriptable at runtime) is not a runtime dependency.
if TYPE_CHECKING:
    PhraseFormBase = forms.ModelForm[Phrase]
    PhraseInlineBase = admin.TabularInline[Phrase, Intent]
    IntentAdminBase = admin.ModelAdmin[Intent]
    PhraseAdminBase = admin.ModelAdmin[Phrase]
else:
    PhraseFormBase = forms.ModelForm
    PhraseInlineBase = admin.TabularInline
    IntentAdminBase = PhraseAdminBase = admin.ModelAdmin


class PhraseForm(PhraseFormBase):
    class Meta:
        model = Phrase
        fields = ["intent", "text", "enabled"]
        # The form checks the length before the model does, so it needs the same clear message.
        error_messages = {"text": {"max_length": PHRASE_TOO_LONG}}
        widgets = {"text": forms.Textarea(attrs={"rows": 2, "cols": 90})}


def warn_if_long(request: HttpRequest, phrase: Phrase) -> None:
    # A warning, not a refusal: the guideline is about taste, Twitch's limit is enforced elsewhere.
    if len(phrase.text) > PHRASE_GUIDELINE_LENGTH:
        messages.warning(
            request,
            f"Phrase “{phrase}” ({phrase.intent.slug}) is {len(phrase.text)} characters long; "
            f"chat reads best under {PHRASE_GUIDELINE_LENGTH}.",
        )


class PhraseInline(PhraseInlineBase):
    model = Phrase
    form = PhraseForm
    fields = ["text", "enabled", "length"]
    readonly_fields = ["length"]
    extra = 1

    @admin.display(description="length")
    def length(self, obj: Phrase) -> int:
        return len(obj.text)


@admin.register(Intent)
class IntentAdmin(IntentAdminBase):
    list_display = ["slug", "description", "enabled", "phrase_count", "enabled_phrase_count"]
    list_filter = ["enabled"]
    search_fields = ["slug", "description", "phrases__text"]
    inlines = [PhraseInline]
    actions = ["enable", "disable"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Intent]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                phrase_total=Count("phrases", distinct=True),
                phrase_enabled=Count("phrases", filter=Q(phrases__enabled=True), distinct=True),
            )
        )

    @admin.display(description="phrases", ordering="phrase_total")
    def phrase_count(self, obj: Intent) -> int:
        return obj.phrase_total  # type: ignore[attr-defined]

    @admin.display(description="enabled phrases", ordering="phrase_enabled")
    def enabled_phrase_count(self, obj: Intent) -> int:
        return obj.phrase_enabled  # type: ignore[attr-defined]

    @admin.action(description="Enable selected intents")
    def enable(self, request: HttpRequest, queryset: QuerySet[Intent]) -> None:
        count = queryset.update(enabled=True)
        schedule_reload(queryset.db)  # update() sends no signal
        self.message_user(request, f"Enabled {count} intent(s).", messages.SUCCESS)

    @admin.action(description="Disable selected intents")
    def disable(self, request: HttpRequest, queryset: QuerySet[Intent]) -> None:
        count = queryset.update(enabled=False)
        schedule_reload(queryset.db)
        self.message_user(request, f"Disabled {count} intent(s); their replies now come from chill.")

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: Any) -> None:
        super().save_formset(request, form, formset, change)
        for obj in [*formset.new_objects, *(obj for obj, _ in formset.changed_objects)]:
            if isinstance(obj, Phrase):
                warn_if_long(request, obj)


@admin.register(Phrase)
class PhraseAdmin(PhraseAdminBase):
    form = PhraseForm
    list_display = ["text", "intent", "enabled", "length"]
    list_filter = ["intent", "enabled"]
    list_select_related = ["intent"]
    search_fields = ["text", "intent__slug"]
    actions = ["enable", "disable"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Phrase]:
        return super().get_queryset(request).annotate(text_length=Length("text"))

    @admin.display(description="length", ordering="text_length")
    def length(self, obj: Phrase) -> int:
        return len(obj.text)

    @admin.action(description="Enable selected phrases")
    def enable(self, request: HttpRequest, queryset: QuerySet[Phrase]) -> None:
        count = queryset.update(enabled=True)
        schedule_reload(queryset.db)  # update() sends no signal
        self.message_user(request, f"Enabled {count} phrase(s).", messages.SUCCESS)

    @admin.action(description="Disable selected phrases")
    def disable(self, request: HttpRequest, queryset: QuerySet[Phrase]) -> None:
        count = queryset.update(enabled=False)
        schedule_reload(queryset.db)
        self.message_user(request, f"Disabled {count} phrase(s).", messages.SUCCESS)

    def save_model(self, request: HttpRequest, obj: Phrase, form: Any, change: Any) -> None:
        super().save_model(request, obj, form, change)
        warn_if_long(request, obj)
