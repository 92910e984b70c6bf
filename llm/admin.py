"""Read-only admin for the availability history: rows are written by the bot, pruned by retention."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from llm.models import BootDetection, CascadeCall, Probe, TierEvent


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
    list_display = ("created", "tier", "kind", "ok", "latency_ms", "error", "detail")
    list_filter = ("tier", "ok", "kind")
    search_fields = ("error", "detail")


@admin.register(CascadeCall)
class CascadeCallAdmin(HistoryAdmin):
    list_display = ("created", "platform", "channel", "intent", "source", "latency_ms", "timed_out")
    list_filter = ("source", "platform", "intent", "timed_out")
    search_fields = ("channel",)


@admin.register(TierEvent)
class TierEventAdmin(HistoryAdmin):
    list_display = ("created", "tier", "state", "error", "detail")
    list_filter = ("tier", "state")


@admin.register(BootDetection)
class BootDetectionAdmin(HistoryAdmin):
    list_display = ("created", "process", "mode", "found", "model", "endpoint", "latency_ms", "error")
    list_filter = ("found", "mode", "process")
