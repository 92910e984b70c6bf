"""The LLM availability dashboard and its CSV exports (staff only)."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from llm.cascade.config import ConfigError, load_config
from llm.dashboard import charts, export, stats
from llm.dashboard.buckets import Buckets
from llm.dashboard.forms import PRESETS, Span, WindowForm
from llm.models import BootDetection, Tier

BOOT_ROWS = 20
INCIDENT_ROWS = 100


def adapter_states() -> list[Any] | None:
    """The chat adapters' states, or None when this install has no such model."""
    try:
        model = apps.get_model("chatbridge", "AdapterState")
    except LookupError:
        return None
    return list(model.objects.order_by("platform"))


def tier_panel(
    tier: str, span: Span, buckets: Buckets, uptime: dict[str, stats.Ratio], latency: list[stats.LatencyPoint]
) -> dict[str, Any]:
    return {
        "tier": tier,
        "label": Tier(tier).label,
        "state": stats.current_state(tier),
        "uptime": uptime,
        "heartbeat": charts.heartbeat(tier, stats.heartbeat(tier, span.end)),
        "latency": charts.latency(str(Tier(tier).label), buckets, latency),
        "latency_probes": sum(p.count for p in latency),
    }


def env_budget() -> tuple[int | None, int | None]:
    """OPENAI_DAILY_REQUESTS and OPENAI_DAILY_TOKENS, as the bot reads them."""
    try:
        config = load_config()
    except ConfigError:
        # The bot refuses to start on a bad value and says why; the page still shows the rest.
        return None, None
    return config.openai_daily_requests, config.openai_daily_tokens


def dashboard_context(span: Span, now: datetime) -> dict[str, Any]:
    buckets = Buckets.for_window(span.start, span.end)
    uptime = stats.uptime(now)
    latency = stats.latency(buckets, now)
    replies = stats.replies(buckets, now)
    incidents = stats.incidents(span.start, span.end)
    rows = [
        {"incident": i, "duration": i.duration(now), "in_window": i.overlap(span.start, span.end, now)}
        for i in incidents[:INCIDENT_ROWS]
    ]
    return {
        "span": span,
        "now": now,
        "bucket": buckets.width,
        "tiers": [tier_panel(t, span, buckets, uptime[t], latency.get(t, [])) for t in Tier.values],
        "incidents": rows,
        "incident_count": len(incidents),
        "downtime": sum((i.overlap(span.start, span.end, now) for i in incidents), timedelta(0)),
        "months": stats.monthly_summary(now),
        "openai_today": stats.openai_today(now, *env_budget()),
        "replies": replies,
        "replies_chart": charts.replies(replies),
        "sources": [(s.value, s.label, replies.totals.get(s, 0)) for s in charts.SOURCES],
        "boots": list(
            BootDetection._default_manager.filter(created__lt=span.end).order_by("-created")[:BOOT_ROWS]
        ),
        "adapters": adapter_states(),
        "time_zone": settings.TIME_ZONE,
    }


@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    form = WindowForm(request.GET or None)
    now = timezone.now()
    span = form.span(now)
    context = dashboard_context(span, now)
    context.update(form=form, presets=PRESETS, query=request.GET.urlencode())
    template = "llm/_panels.html" if request.GET.get("partial") else "llm/dashboard.html"
    return render(request, template, context)


@staff_member_required
def export_csv(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in export.EXPORTS:
        raise Http404(f"no export named {kind!r}")
    span = WindowForm(request.GET or None).span(timezone.now())
    header, rows = export.EXPORTS[kind](span.start, span.end)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = f"{span.start:%Y%m%dT%H%M}-{span.end:%Y%m%dT%H%M}"
    response["Content-Disposition"] = f'attachment; filename="serdabot-{kind}-{stamp}.csv"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response
