"""The LLM availability dashboard and its CSV exports (staff only)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from llm.alerts.recent import recent_alerts
from llm.cascade.config import ConfigError, load_config
from llm.dashboard import availability, charts, export, series, setup_checklist, stats
from llm.dashboard.buckets import Buckets
from llm.dashboard.forms import PRESETS, Span, WindowForm
from llm.history.scopes import CONSOLE_ROLES
from llm.history.scopes import scopes as scopes_of
from llm.models import BootDetection, Source, Tier
from serdabot.redact import redact

BOOT_ROWS = 20
INCIDENT_ROWS = 100
UPTIME_SPANS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
TIER_SOURCES = {Tier.LOCAL.value: Source.LOCAL.value, Tier.OPENAI.value: Source.OPENAI.value}


def adapter_states() -> list[Any] | None:
    """The chat adapters' states, or None when this install has no such model."""
    try:
        model = apps.get_model("chatbridge", "AdapterState")
    except LookupError:
        return None
    return list(model.objects.order_by("platform"))


def env_budget() -> tuple[int | None, int | None]:
    """OPENAI_DAILY_REQUESTS and OPENAI_DAILY_TOKENS, as the bot reads them."""
    try:
        config = load_config()
    except ConfigError:
        # The bot refuses to start on a bad value and says why; the page still shows the rest.
        return None, None
    return config.openai_daily_requests, config.openai_daily_tokens


@dataclass(frozen=True, slots=True)
class Waited:
    """What chat waited for the replies of one source in the window."""

    source: str
    label: str
    replies: int
    p50: float | None
    p95: float | None
    first_p50: float | None
    first_p95: float | None


def redacted(period: availability.Period) -> availability.Period:
    return replace(period, error=redact(period.error), detail=redact(period.detail))


def waited(data: series.Aggregates) -> list[Waited]:
    rows = []
    for source in charts.SOURCES:
        reply = data.total(series.REPLY, source.value)
        first = data.total(series.FIRST_TOKEN, source.value)
        rows.append(
            Waited(
                source.value,
                str(source.label),
                reply.count,
                *series.percentiles(reply),
                *series.percentiles(first),
            )
        )
    return rows


def tier_panel(
    tier: str,
    span: Span,
    buckets: Buckets,
    data: series.Aggregates,
    state: stats.TierState,
    known: availability.Availability,
) -> dict[str, Any]:
    label = str(Tier(tier).label)
    probes = data.total(series.PROBE, tier)
    source = TIER_SOURCES[tier]
    reply_points = charts.latency_points(data, series.REPLY, source)
    probe_points = charts.latency_points(data, series.PROBE, tier)
    uptime = {key: known.uptime(tier, span.end - length, span.end) for key, length in UPTIME_SPANS.items()}
    return {
        "tier": tier,
        "label": label,
        "state": state,
        "uptime": uptime,
        "uptime_window": known.uptime(tier, span.start, span.end),
        # The spans by their names on the page ("24 h", "7 jours"), as the window buttons say them.
        "uptime_shown": [(PRESETS[key][0], u) for key, u in uptime.items()],
        "probes": probes,
        "heartbeat": charts.heartbeat(tier, stats.heartbeat(tier, span.end)),
        "latency": charts.latency(_("Probe latency of %(tier)s") % {"tier": label}, buckets, probe_points),
        "latency_probes": sum(p.count for p in probe_points),
        "reply_latency": charts.latency(
            _("Reply latency of %(tier)s") % {"tier": label}, buckets, reply_points, unit="replies"
        ),
        "reply_count": sum(p.count for p in reply_points),
    }


def dashboard_context(span: Span, now: datetime) -> dict[str, Any]:
    buckets = Buckets.for_window(span.start, span.end)
    scopes = scopes_of(span.console)
    data = series.aggregate(buckets, scopes)
    known = availability.Availability(scopes, now)
    states = stats.current_states(scopes)
    rows = [
        {"incident": i, "duration": i.duration(now), "in_window": i.overlap(span.start, span.end, now)}
        # Redacted when read, as every history text shown: a server's error may quote a key.
        for i in (redacted(p) for p in known.incidents_in(span.start, span.end, limit=INCIDENT_ROWS))
    ]
    replies = {source.value: data.total(series.REPLY, source.value).count for source in charts.SOURCES}
    total_replies = sum(replies.values())
    boots = BootDetection._default_manager.filter(created__lt=span.end)
    if not span.console:
        boots = boots.exclude(role__in=CONSOLE_ROLES)
    return {
        "span": span,
        "now": now,
        "bucket": buckets.label,
        "tiers": [tier_panel(t, span, buckets, data, states[t], known) for t in Tier.values],
        "incidents": rows,
        "incident_count": known.incident_count(span.start, span.end),
        "downtime": known.downtime(span.start, span.end),
        "months": known.months(3),
        "openai_today": stats.openai_today(now, *env_budget()),
        "waited": waited(data),
        "replies_total": total_replies,
        "fallback_share": 100.0 * replies[Source.FALLBACK.value] / total_replies if total_replies else None,
        "replies_chart": charts.replies(buckets, charts.reply_counts(data)),
        "sources": [(s.value, s.label, replies[s.value]) for s in charts.SOURCES],
        "boots": list(boots.order_by("-created", "-pk")[:BOOT_ROWS]),
        "adapters": adapter_states(),
        "alerts": recent_alerts(),
        "time_zone": timezone.get_current_timezone_name(),
    }


@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    form = WindowForm(request.GET or None)
    now = timezone.now()
    span = form.span(now)
    context = dashboard_context(span, now)
    context.update(form=form, presets=PRESETS, query=request.GET.urlencode())
    template = "llm/_panels.html" if request.GET.get("partial") else "llm/dashboard.html"
    if template == "llm/dashboard.html":  # the panels' refreshes do not show it
        context["setup"] = setup_checklist.build()
    return render(request, template, context)


@staff_member_required
def export_csv(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in export.EXPORTS:
        raise Http404(f"no export named {kind!r}")
    span = WindowForm(request.GET or None).span(timezone.now())
    header, rows = export.EXPORTS[kind](span.start, span.end, scopes_of(span.console))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = f"{span.start:%Y%m%dT%H%M}-{span.end:%Y%m%dT%H%M}"
    response["Content-Disposition"] = f'attachment; filename="serdabot-{kind}-{stamp}.csv"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response
