"""Admin for channel settings, adapter state (read-only) and the Twitch token (never shown)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from chatbridge.models import AdapterState, ChannelSettings, TwitchToken


@admin.register(ChannelSettings)
class ChannelSettingsAdmin(admin.ModelAdmin[ChannelSettings]):
    list_display = [
        "platform",
        "channel",
        "label",
        "joined",
        "bot_enabled",
        "llm_enabled",
        "persona",
        "language",
        "ask_enabled",
        "chill_enabled",
        "mention_enabled",
        "user_cooldown",
        "channel_cooldown",
        "moderators_bypass",
        "cooldown_notice",
        "fallback_mode",
    ]
    list_editable = [
        "joined",
        "ask_enabled",
        "chill_enabled",
        "mention_enabled",
        "user_cooldown",
        "channel_cooldown",
    ]
    list_filter = ["platform", "joined", "bot_enabled", "llm_enabled", "persona", "language", "fallback_mode"]
    search_fields = ["channel", "label", "extra_names"]
    fieldsets = [
        (None, {"fields": ["platform", "channel", "label", "joined", "bot_enabled", "llm_enabled"]}),
        (
            _("From the platform"),
            {"fields": ["broadcaster_id", "guild_id", "bot_authorized"], "classes": ["collapse"]},
        ),
        (
            _("Persona"),
            {
                "fields": ["persona", "language", "ask_prompt", "chill_prompt", "allow_links"],
                "description": _(
                    "Empty prompts follow the persona's preset. Changes apply to the next line."
                ),
            },
        ),
        (_("Commands"), {"fields": ["ask_enabled", "chill_enabled", "mention_enabled", "extra_names"]}),
        (
            _("Cooldowns"),
            {"fields": ["user_cooldown", "channel_cooldown", "moderators_bypass", "cooldown_notice"]},
        ),
        (_("Replies"), {"fields": ["fallback_mode", "reply_queue_limit"]}),
    ]
    # Filled in from Twitch's and Discord's answers (the setup pages), not typed.
    readonly_fields = ["broadcaster_id", "guild_id", "bot_authorized"]


@admin.register(AdapterState)
class AdapterStateAdmin(admin.ModelAdmin[AdapterState]):
    list_display = [
        "platform",
        "state",
        "last_error",
        "messages_in",
        "messages_out",
        "replies_dropped",
        "cooldown_hits",
        "updated",
    ]
    readonly_fields = [f.name for f in AdapterState._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # written by the adapters only

    def has_change_permission(self, request: HttpRequest, obj: AdapterState | None = None) -> bool:
        return False


@admin.register(TwitchToken)
class TwitchTokenAdmin(admin.ModelAdmin[TwitchToken]):
    # The token and refresh token are never rendered, not even masked: deleting the
    # row (to force the environment's token on next start) is all the admin needs.
    list_display = ["user_id", "stored", "updated"]
    fields = ["user_id", "stored", "updated"]
    readonly_fields = ["user_id", "stored", "updated"]

    @admin.display(description=_("Token"))
    def stored(self, obj: TwitchToken) -> str:
        return gettext("stored (hidden)") if obj.token else gettext("missing")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: TwitchToken | None = None) -> bool:
        return False


# The moderation admin (blocked terms, held replies) lives with the moderation code.
from chatbridge.moderation import admin as moderation_admin  # noqa: E402, F401
