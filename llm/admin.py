"""Admin for the LLM app.

The availability history is read-only: rows are written by the bot, pruned by retention.
The OpenAI daily budget and the model prices are the streamer's to edit; a saved edit
reaches every bot process without a restart (llm/signals.py).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from llm.models import BootDetection, BudgetSettings, CascadeCall, ModelPrice, Probe, TierEvent, Usage


class HistoryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    date_hierarchy = "created"
    list_per_page = 100
    # The changelist's COUNT(*) over months of probes is slow and rarely needed.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Probe)
class ProbeAdmin(HistoryAdmin):
    list_display = ("created", "tier", "kind", "ok", "latency_ms", "error", "detail", "role")
    list_filter = ("tier", "ok", "kind", "role")
    search_fields = ("error", "detail")


@admin.register(CascadeCall)
class CascadeCallAdmin(HistoryAdmin):
    list_display = ("created", "platform", "channel", "intent", "source", "latency_ms", "timed_out", "role")
    list_filter = ("source", "platform", "intent", "timed_out", "role")
    search_fields = ("channel",)


@admin.register(TierEvent)
class TierEventAdmin(HistoryAdmin):
    list_display = ("created", "tier", "state", "error", "detail", "role", "host")
    list_filter = ("tier", "state", "role")


@admin.register(BootDetection)
class BootDetectionAdmin(HistoryAdmin):
    list_display = (
        "created",
        "process",
        "role",
        "host",
        "pid",
        "mode",
        "found",
        "model",
        "endpoint",
        "latency_ms",
        "error",
    )
    list_filter = ("found", "mode", "process", "role")


@admin.register(Usage)
class UsageAdmin(HistoryAdmin):
    list_display = ("created", "tier", "model", "prompt_tokens", "completion_tokens", "reported", "role")
    list_filter = ("tier", "reported", "model", "role")


@admin.register(BudgetSettings)
class BudgetSettingsAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("__str__", "daily_requests", "daily_tokens")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # One row holds the limits: the bot reads the first one only.
        return super().has_add_permission(request) and not BudgetSettings._default_manager.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Emptying both fields gives the environment's limits back; no row to delete.
        return False


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("model", "input_per_million", "output_per_million")
    list_editable = ("input_per_million", "output_per_million")
    search_fields = ("model",)
