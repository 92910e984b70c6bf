"""The latest alerts, for the dashboard (it only reads them; the loop writes them)."""

from __future__ import annotations

from llm.alerts.models import Alert


def recent_alerts(limit: int = 20) -> list[Alert]:
    return list(Alert.objects.select_related("target").order_by("-created", "-pk")[:limit])
