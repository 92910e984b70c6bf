"""Admin for alert targets, the rules (one row) and the alerts sent (read-only).

A webhook URL carries its token: lists show only where it goes. "Send a test alert"
(an action on the list, a button on a target's page) sends at once and says how it went.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from llm.alerts.dispatch import send_test
from llm.alerts.models import Alert, AlertRules, AlertTarget
from llm.alerts.transports import masked_url


def report_test(request: HttpRequest, target: AlertTarget) -> None:
    failure = send_test(target)
    if failure is None:
        messages.success(request, _("Test alert sent to “%(name)s”.") % {"name": target.name})
    else:
        messages.error(
            request,
            _("Test alert to “%(name)s” failed: %(error)s") % {"name": target.name, "error": failure.reason},
        )


@admin.register(AlertTarget)
class AlertTargetAdmin(admin.ModelAdmin[AlertTarget]):
    list_display = ["name", "kind", "destination", "enabled"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]
    fields = ["name", "kind", "url", "email_to", "enabled"]
    actions = ["send_test_alert"]
    change_form_template = "admin/llm/alerttarget/change_form.html"
    # An address typed without a scheme is a webhook on https, never plain http.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description=gettext_lazy("Destination"))
    def destination(self, obj: AlertTarget) -> str:
        return obj.email_to if obj.kind == AlertTarget.Kind.EMAIL else masked_url(obj.url)

    @admin.action(description=gettext_lazy("Send a test alert"), permissions=["change"])
    def send_test_alert(self, request: HttpRequest, queryset: QuerySet[AlertTarget]) -> None:
        for target in queryset:
            report_test(request, target)

    def get_urls(self) -> list[URLPattern]:
        test = path(
            "<path:object_id>/test/",
            # admin_view: staff only, CSRF checked.
            self.admin_site.admin_view(self.test_view),
            name="llm_alerttarget_test",
        )
        return [test, *super().get_urls()]

    def test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        target = self.get_object(request, unquote(object_id))
        if target is None:
            raise Http404
        if not self.has_change_permission(request, target):
            raise PermissionDenied
        report_test(request, target)
        return HttpResponseRedirect(reverse("admin:llm_alerttarget_change", args=[target.pk]))


@admin.register(AlertRules)
class AlertRulesAdmin(admin.ModelAdmin[AlertRules]):
    list_display = ["__str__", "down_after", "on_down", "on_back_up", "on_budget", "on_adapter"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # One row holds the rules: the loop reads the first one only.
        return super().has_add_permission(request) and not AlertRules.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin[Alert]):
    list_display = ["created", "event", "target", "status", "attempts", "sent", "last_error"]
    list_filter = ["status", "event", "target"]
    list_select_related = ["target"]
    search_fields = ["subject", "key"]
    date_hierarchy = "created"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # written by the alerts loop and the test button

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # Deleting stays allowed: deleting a target deletes its alerts, which the admin only
    # does for someone allowed to delete them.
