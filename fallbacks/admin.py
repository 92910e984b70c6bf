from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Length
from django.http import HttpRequest

from fallbacks.commands import aliases_of, collisions, parse_aliases
from fallbacks.models import PHRASE_GUIDELINE_LENGTH, PHRASE_TOO_LONG, Intent, Phrase
from fallbacks.signals import schedule_reload

# Django's admin and form classes are generic only in django-stubs; django-stubs-ext
# (which would make them subscriptable at runtime) is not a runtime dependency.
if TYPE_CHECKING:
    IntentFormBase = forms.ModelForm[Intent]
    PhraseFormBase = forms.ModelForm[Phrase]
    PhraseInlineBase = admin.TabularInline[Phrase, Intent]
    IntentAdminBase = admin.ModelAdmin[Intent]
    PhraseAdminBase = admin.ModelAdmin[Phrase]
else:
    IntentFormBase = PhraseFormBase = forms.ModelForm
    PhraseInlineBase = admin.TabularInline
    IntentAdminBase = PhraseAdminBase = admin.ModelAdmin


class PhraseForm(PhraseFormBase):
    class Meta:
        model = Phrase
        fields = ["intent", "text", "language", "enabled"]
        # The form checks the length before the model does, so it needs the same clear message.
        error_messages = {"text": {"max_length": PHRASE_TOO_LONG}}
        widgets = {"text": forms.Textarea(attrs={"rows": 2, "cols": 90})}


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
            raise forms.ValidationError("Write the aliases without the “!”, e.g. “discord, dc”.")
        if invalid:
            raise forms.ValidationError(
                f"Not a command name: {', '.join(invalid)}. Use letters, digits, _ and -, "
                "and separate the names with commas."
            )
        normalised = ", ".join(names)
        limit = Intent._meta.get_field("aliases").max_length or 0
        if len(normalised) > limit:  # ", " between names can make the text longer than typed
            raise forms.ValidationError(
                f"Too many aliases: at most {limit} characters once separated by “, ”."
            )
        return normalised

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        slug = (cleaned.get("slug") or "").lower()
        if "aliases" in cleaned and slug:
            # The slug is already the command's name: listing it again changes nothing.
            cleaned["aliases"] = ", ".join(name for name in aliases_of(cleaned["aliases"]) if name != slug)
        return cleaned


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
    fields = ["text", "language", "enabled", "length"]
    readonly_fields = ["length"]
    extra = 1

    @admin.display(description="length")
    def length(self, obj: Phrase) -> int:
        return len(obj.text)


@admin.register(Intent)
class IntentAdmin(IntentAdminBase):
    form = IntentForm
    list_display = [
        "slug",
        "description",
        "enabled",
        "command",
        "aliases",
        "phrase_count",
        "enabled_phrase_count",
    ]
    list_filter = ["enabled", "command", "ask_model", "permission"]
    search_fields = ["slug", "description", "aliases", "phrases__text"]
    fieldsets = [
        (None, {"fields": ["slug", "description", "enabled"]}),
        (
            "Chat command",
            {
                "description": "Viewers type !<slug> or an alias; the reply is one of the phrases below, "
                "with {user} and {channel} filled in, or the model's answer when “Ask the model” is on.",
                "fields": [
                    "command",
                    "aliases",
                    "permission",
                    ("user_cooldown", "channel_cooldown"),
                    "ask_model",
                    "prompt",
                ],
            },
        ),
    ]
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

    def save_model(self, request: HttpRequest, obj: Intent, form: Any, change: Any) -> None:
        super().save_model(request, obj, form, change)
        # A warning, not a refusal: the clash has a clear winner, the streamer may mean it.
        if obj.command:
            for clash in collisions(obj.slug, aliases_of(obj.aliases)):
                messages.warning(request, clash)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: Any) -> None:
        super().save_formset(request, form, formset, change)
        for obj in [*formset.new_objects, *(obj for obj, _ in formset.changed_objects)]:
            if isinstance(obj, Phrase):
                warn_if_long(request, obj)


@admin.register(Phrase)
class PhraseAdmin(PhraseAdminBase):
    form = PhraseForm
    list_display = ["text", "intent", "language", "enabled", "length"]
    list_filter = ["intent", "language", "enabled"]
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
