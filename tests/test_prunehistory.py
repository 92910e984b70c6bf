"""Retention: `prunehistory` and the daily task delete old history, in batches, and keep the rest."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from io import StringIO

import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from chatbridge.moderation.models import HeldReply
from llm.history.retention import prune_daily, prune_history
from llm.models import BootDetection, CascadeCall, Probe, TierEvent
from tests.dashboard_history import call, event, probe
from tests.proxied_database import database_away

DAY = timedelta(days=1)


def old_and_new(now):
    for age in (100, 91, 89, 1):
        probe(now - age * DAY)
        call(now - age * DAY, "local")
        BootDetection._default_manager.create(created=now - age * DAY, mode="auto", found=True, endpoint="x")
        HeldReply.objects.create(
            created=now - age * DAY, platform="twitch", channel="s", user="u", reason="blocked_term"
        )
    event(now - 200 * DAY, "openai", "down", "AuthenticationError")  # openai's latest state: kept
    event(now - 150 * DAY, "local", "down")
    event(now - 100 * DAY, "local", "up")  # older than the latest local event below: deleted
    event(now - DAY, "local", "down")


@pytest.mark.django_db
def test_it_deletes_history_older_than_the_retention_in_batches() -> None:
    now = timezone.now()
    old_and_new(now)

    deleted = prune_history(90, now=now, batch_size=1)

    assert deleted == {
        "probe": 2,
        "cascadecall": 2,
        "tierevent": 2,
        "bootdetection": 2,
        "heldreply": 2,  # chatbridge's held replies, which may hold chat text, go with the history
        # Roll-ups and periods are kept for SUMMARY_DAYS (400), whatever the raw retention.
        "rollup": 0,
        "incident": 0,
        "absence": 0,
        "alert": 0,
        "adapteroutage": 0,
    }
    assert (
        Probe._default_manager.count()
        == CascadeCall._default_manager.count()
        == BootDetection._default_manager.count()
        == HeldReply.objects.count()
        == 2
    )
    assert sorted(TierEvent._default_manager.values_list("tier", "state")) == [
        ("local", "down"),
        ("openai", "down"),
    ]


@pytest.mark.django_db
def test_the_command_uses_the_setting_or_days() -> None:
    now = timezone.now()
    old_and_new(now)
    out = StringIO()

    with override_settings(HISTORY_RETENTION_DAYS=95):
        call_command("prunehistory", stdout=out)
    assert "Kept the last 95 days; deleted 1 probe" in out.getvalue()
    assert Probe._default_manager.count() == 3

    call_command("prunehistory", "--days", "30", stdout=out)
    assert Probe._default_manager.count() == 1
    with pytest.raises(CommandError):
        call_command("prunehistory", "--days", "0")


async def until_pruned(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    """Wait (a bounded time) for the daily task's prune to leave the 2 recent probes, then stop it."""
    for _ in range(100):
        if await Probe._default_manager.acount() == 2:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)


@pytest.mark.django_db(transaction=True)
async def test_the_daily_task_prunes_at_once_and_stops_when_asked() -> None:
    now = timezone.now()
    await sync_to_async(old_and_new)(now)
    stop = asyncio.Event()

    task = asyncio.create_task(prune_daily(stop, interval=3600))
    await until_pruned(stop, task)

    assert await Probe._default_manager.acount() == 2
    # Close the connection asgiref's thread opened (PostgreSQL drops the test database after).
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
async def test_the_daily_task_tries_again_soon_after_a_database_outage(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker started while the database is away: one line without a traceback, and the
    # prune runs once it is back, not a day later.
    monkeypatch.setattr("llm.history.retention.OUTAGE_RETRY", 0.2)
    now = timezone.now()
    await sync_to_async(old_and_new)(now)
    stop = asyncio.Event()
    async with database_away():
        task = asyncio.create_task(prune_daily(stop, interval=3600))
        await asyncio.sleep(0.1)
    await until_pruned(stop, task)

    assert await Probe._default_manager.acount() == 2
    said = [r for r in caplog.records if r.name == "llm.retention"]
    assert any("database unreachable" in r.getMessage() for r in said)
    assert not any(r.exc_info for r in said)
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db
def test_each_role_keeps_its_latest_change_so_console_runs_never_erase_the_bot_s_state() -> None:
    now = timezone.now()
    event(now - 200 * DAY, "local", "up")  # the bot's latest: kept however old
    event(now - 150 * DAY, "local", "down", role="console")
    event(now - 120 * DAY, "local", "up", role="console")  # the console's latest: kept

    prune_history(90, now=now)

    assert sorted(TierEvent._default_manager.values_list("role", "state")) == [("", "up"), ("console", "up")]
