"""A small history the dashboard tests build at known times, and the helpers to build it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client

from llm.history import periods, rollups
from llm.models import CascadeCall, Probe, TierEvent

HOUR = timedelta(hours=1)


def written(row: Probe | CascadeCall | TierEvent) -> None:
    """What the history writer does with each row it saves: roll-ups and periods, in one transaction."""
    with transaction.atomic():
        rollups.apply(rollups.Tallies().rows_of([row]))
        if isinstance(row, TierEvent):
            periods.apply([row])


@pytest.fixture
def staff_client(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_user("staff", password="x", is_staff=True))
    return client


def probe(
    at: datetime, tier: str = "local", *, ok: bool = True, latency: float | None = 100.0, error: str = ""
) -> Probe:
    row = Probe._default_manager.create(
        created=at, tier=tier, ok=ok, latency_ms=latency if ok else None, error=error if not ok else ""
    )
    written(row)
    return row


def event(at: datetime, tier: str, state: str, error: str = "", *, role: str = "") -> TierEvent:
    row = TierEvent._default_manager.create(created=at, tier=tier, state=state, error=error, role=role)
    written(row)
    return row


def call(
    at: datetime,
    source: str,
    *,
    platform: str = "twitch",
    latency: float = 500.0,
    first_token: float | None = None,
    role: str = "",
) -> CascadeCall:
    row = CascadeCall._default_manager.create(
        created=at,
        platform=platform,
        intent="ask",
        source=source,
        latency_ms=latency,
        first_token_ms=first_token,
        role=role,
    )
    written(row)
    return row


def outage_history(now: datetime) -> None:
    """Four incidents, seen from `now` with a 24 h window:

    - local, 26 h ago -> 23 h ago (down, then cooling, then up): spans the window's start;
    - local, 10 h ago -> 9 h 30 min ago: inside the window;
    - local, 50 h ago -> 49 h ago: before the window (seen by 7 d);
    - openai, since 2 h ago: still ongoing.
    """
    event(now - 60 * HOUR, "local", "up")
    event(now - 50 * HOUR, "local", "down", "ConnectError")
    event(now - 49 * HOUR, "local", "up")
    event(now - 26 * HOUR, "local", "down", "ReadTimeout")
    event(now - 25 * HOUR, "local", "cooling", "ReadTimeout")
    event(now - 23 * HOUR, "local", "up")
    event(now - 10 * HOUR, "local", "down", "HTTP503")
    event(now - 9.5 * HOUR, "local", "up")
    event(now - 30 * HOUR, "openai", "up")
    event(now - 2 * HOUR, "openai", "down", "AuthenticationError")
