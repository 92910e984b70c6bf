from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.sites import AdminSite
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Length
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from fallbacks import preview
from fallbacks.commands import aliases_of, collisions
from fallbacks.forms import IntentForm, PhraseForm
from fallbacks.models import PHRASE_GUIDELINE_LENGTH, Intent, Phrase
from fallbacks.signals import schedule_reload

# Django's admin classes are generic only in django-stubs; django-stubs-ext (which would
# make them subscriptable at runtime) is not a runtime dependency.
if TYPE_CHECKING:
    PhraseInlineBase = admin.TabularInline[Phrase, Intent]
    IntentAdminBase = admin.ModelAdmin[Intent]
    PhraseAdminBase = admin.ModelAdmin[Phrase]
else:
    PhraseInlineBase = admin.TabularInline
    IntentAdminBase = PhraseAdminBase = admin.ModelAdmin

PREVIEW_URL_NAME = "fallbacks_phrase_preview"


def warn_about(request: HttpRequest, phrase: Phrase) -> None:
    """Warnings, not refusals: the phrase is saved, and the streamer may mean it."""
    if len(phrase.text) > PHRASE_GUIDELINE_LENGTH:
        # The guideline is about taste; Twitch's limit is enforced by the form.
        messages.warning(
            request,
            _(
                "Phrase “%(phrase)s” (%(intent)s) is %(length)d characters long; "
                "chat reads best under %(limit)d."
            )
            % {
                "phrase": phrase,
                "intent": phrase.intent.slug,
                "length": len(phrase.text),
                "limit": PHRASE_GUIDELINE_LENGTH,
            },
        )
    start = preview.dropped_start(phrase.text)
    if start:
        # A leading "/" or "." would be a chat command: the reply goes out without it.
        messages.warning(
            request,
            ngettext(
                "Phrase “%(phrase)s” (%(intent)s) starts with “%(start)s”: "
                "chat will see it without that character.",
                "Phrase “%(phrase)s” (%(intent)s) starts with “%(start)s”: "
                "chat will see it without those characters.",
                len(start),
            )
            % {"phrase": phrase, "intent": phrase.intent.slug, "start": start},
        )


class ChatPreviewButton:
    """The "Try this phrase" button of a phrase's form; static/fallbacks/phrases.js sends the
    text as typed to PhraseAdmin's preview view and shows the reply chat would get under it."""

    admin_site: AdminSite

    @admin.display(description=_("Chat preview"))
    def chat_preview(self, obj: Phrase | None) -> SafeString:
        return format_html(
            '<button type="button" class="button phrase-preview-button" data-url="{}" data-error="{}">'
            "{}</button>",
            reverse(f"{self.admin_site.name}:{PREVIEW_URL_NAME}"),
            _("The preview could not be loaded. Reload the page and try again."),
            _("Try this phrase"),
        )


class PhraseInline(ChatPreviewButton, PhraseInlineBase):
    model = Phrase
    form = PhraseForm
    # Django's tabular inline less the truncated title above each row: the phrase is
    # already in its textarea.
    template = "admin/fallbacks/phrase/tabular.html"
    fields = ["text", "language", "enabled", "length", "chat_preview"]
    readonly_fields = ["length", "chat_preview"]
    extra = 1

    class Media:
        css = {"all": ["fallbacks/phrases.css"]}
        js = ["fallbacks/phrases.js"]

    @admin.display(description=_("length"))
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
            _("Chat command"),
            {
                "description": _(
                    "Viewers type !<slug> or an alias; the reply is one of the phrases below, "
                    "with {user} and {channel} filled in, or the model's answer when “Ask the model” is on."
                ),
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

    @admin.display(description=_("phrases"), ordering="phrase_total")
    def phrase_count(self, obj: Intent) -> int:
        return obj.phrase_total  # type: ignore[attr-defined]

    @admin.display(description=_("enabled phrases"), ordering="phrase_enabled")
    def enabled_phrase_count(self, obj: Intent) -> int:
        return obj.phrase_enabled  # type: ignore[attr-defined]

    @admin.action(description=_("Enable selected intents"))
    def enable(self, request: HttpRequest, queryset: QuerySet[Intent]) -> None:
        count = queryset.update(enabled=True)
        schedule_reload(queryset.db)  # update() sends no signal
        self.message_user(
            request,
            ngettext("Enabled %(count)d intent.", "Enabled %(count)d intents.", count) % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Disable selected intents"))
    def disable(self, request: HttpRequest, queryset: QuerySet[Intent]) -> None:
        count = queryset.update(enabled=False)
        schedule_reload(queryset.db)
        self.message_user(
            request,
            ngettext(
                "Disabled %(count)d intent; its replies now come from chill.",
                "Disabled %(count)d intents; their replies now come from chill.",
                count,
            )
            % {"count": count},
        )

    def save_model(self, request: HttpRequest, obj: Intent, form: Any, change: Any) -> None:
        super().save_model(request, obj, form, change)
        # A warning, not a refusal: the clash has a clear winner, the streamer may mean it.
        if obj.command:
            for clash in collisions(obj.slug, aliases_of(obj.aliases)):
                messages.warning(request, clash)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: Any) -> None:
        super().save_formset(request, form, formset, change)
        for obj in [*formset.new_objects, *(obj for obj, _fields in formset.changed_objects)]:
            if isinstance(obj, Phrase):
                warn_about(request, obj)


@admin.register(Phrase)
class PhraseAdmin(ChatPreviewButton, PhraseAdminBase):
    form = PhraseForm
    fields = ["intent", "text", "chat_preview", "language", "enabled"]
    readonly_fields = ["chat_preview"]
    list_display = ["text", "intent", "language", "enabled", "length"]
    list_filter = ["intent", "language", "enabled"]
    list_select_related = ["intent"]
    search_fields = ["text", "intent__slug"]
    actions = ["enable", "disable"]

    class Media:
        css = {"all": ["fallbacks/phrases.css"]}
        js = ["fallbacks/phrases.js"]

    def get_urls(self) -> list[URLPattern]:
        preview_url = path("preview/", self.admin_site.admin_view(self.preview_view), name=PREVIEW_URL_NAME)
        # Before the model's own URLs, whose "<object_id>/" would take "preview/".
        return [preview_url, *super().get_urls()]

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """The reply chat would get for the posted phrase, saved or not, as an HTML fragment."""
        if request.method != "POST":  # the phrase is in the body, out of URLs and access logs
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        text = request.POST.get("text", "")
        return TemplateResponse(
            request,
            "admin/fallbacks/phrase/preview.html",
            {
                "previews": preview.previews(text),
                "dropped": preview.dropped_start(text),
                "empty": not text.strip(),
                "sample_user": preview.SAMPLE_USER,
                "sample_channel": preview.SAMPLE_CHANNEL,
            },
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Phrase]:
        return super().get_queryset(request).annotate(text_length=Length("text"))

    @admin.display(description=_("length"), ordering="text_length")
    def length(self, obj: Phrase) -> int:
        return len(obj.text)

    @admin.action(description=_("Enable selected phrases"))
    def enable(self, request: HttpRequest, queryset: QuerySet[Phrase]) -> None:
        count = queryset.update(enabled=True)
        schedule_reload(queryset.db)  # update() sends no signal
        self.message_user(
            request,
            ngettext("Enabled %(count)d phrase.", "Enabled %(count)d phrases.", count) % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Disable selected phrases"))
    def disable(self, request: HttpRequest, queryset: QuerySet[Phrase]) -> None:
        count = queryset.update(enabled=False)
        schedule_reload(queryset.db)
        self.message_user(
            request,
            ngettext("Disabled %(count)d phrase.", "Disabled %(count)d phrases.", count) % {"count": count},
            messages.SUCCESS,
        )

    def save_model(self, request: HttpRequest, obj: Phrase, form: Any, change: Any) -> None:
        super().save_model(request, obj, form, change)
        warn_about(request, obj)
