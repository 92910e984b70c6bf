"""Admin for the LLM app.

The availability history is read-only: rows are written by the bot, pruned by retention.
The OpenAI daily budget, the model prices and the live switches are the streamer's to
edit; a saved edit reaches every bot process without a restart (llm/signals.py).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from llm.cascade.config import LLMConfig, load_config
from llm.cascade.switches import Overrides, Switches, effective
from llm.models import (
    BootDetection,
    BudgetSettings,
    CascadeCall,
    LiveSwitches,
    ModelPrice,
    Probe,
    TierEvent,
    Usage,
)
from serdabot.env import SettingError

# `Switches.why` is in the history's and the log's words (English); the page says it in its own.
WHY = {
    "switched off in the admin": _("switched off in the admin"),
    "paused from the admin": _("paused from the admin"),
}


def why(now: Switches) -> str:
    return str(WHY.get(now.why, now.why))


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


def environment() -> LLMConfig | None:
    """This process's LLM settings (the environment, the YAML file); None when one is bad."""
    try:
        return load_config()
    except SettingError:
        return None  # the bot refuses to start and its log names the setting: nothing to show here


@admin.register(LiveSwitches)
class LiveSwitchesAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("__str__", "llm_now", "fallback_now", "updated")
    fields = ("llm_mode", "paused", "fallback_mode", "in_force", "updated")
    readonly_fields = ("in_force", "updated")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # One row: every process reads the first one only.
        return super().has_add_permission(request) and not LiveSwitches._default_manager.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Empty choices and no pause give the environment's values back; no row to delete.
        return False

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[ModelForm]:  # type: ignore[type-arg]
        env = environment()
        unreadable = gettext("unreadable here")
        mode = env.mode if env is not None else unreadable
        fallback = env.fallback_mode if env is not None else unreadable
        kwargs["help_texts"] = {
            "llm_mode": gettext(
                "Empty: LLM_MODE (%(mode)s in this process's environment). auto: skip the local LLM "
                "while it is down; enabled: try it anyway (breakers still apply); disabled: call no model."
            )
            % {"mode": mode},
            "paused": gettext(
                "Pause the LLM (the GPU is busy with a game): no model is called, no probe is sent, "
                "chat gets fallback phrases. Shown as paused, not as downtime."
            ),
            "fallback_mode": gettext(
                "Empty: FALLBACK_MODE (%(mode)s in this process's environment). "
                "A channel's own fallback mode still wins."
            )
            % {"mode": fallback},
        }
        return super().get_form(request, obj, change=change, **kwargs)

    @admin.display(description=_("LLM now"))
    def llm_now(self, obj: LiveSwitches) -> str:
        env = environment()
        if env is None:
            return "-"
        now = effective(env, Overrides.from_row(obj))
        return f"{now.off} ({why(now)})" if now.off else now.llm_mode

    @admin.display(description=_("Fallback now"))
    def fallback_now(self, obj: LiveSwitches) -> str:
        env = environment()
        return effective(env, Overrides.from_row(obj)).fallback_mode if env is not None else "-"

    @admin.display(description=_("In force"))
    def in_force(self, obj: LiveSwitches | None) -> str:
        """The values every bot process applies within seconds of a save (with this process's
        environment: a bot started with other variables fills the empty choices with its own)."""
        env = environment()
        if env is None:
            return gettext("The LLM settings of this process's environment are not valid: see the bot's log.")
        now = effective(env, Overrides.from_row(obj))
        llm = f"{now.off}: {why(now)}" if now.off else now.llm_mode
        mode_from = gettext("admin") if now.mode_from_admin else "LLM_MODE"
        fallback_from = gettext("admin") if obj is not None and obj.fallback_mode else "FALLBACK_MODE"
        return gettext(
            "LLM: %(llm)s (mode from %(mode_from)s) · fallback phrases: %(fallback)s (from %(fallback_from)s)"
        ) % {
            "llm": llm,
            "mode_from": mode_from,
            "fallback": now.fallback_mode,
            "fallback_from": fallback_from,
        }


# The alerts' admin lives with the alerts; imported here so the admin site registers it.
from llm.alerts import admin as alerts_admin  # noqa: E402, F401
