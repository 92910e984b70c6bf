"""Hourly and daily roll-ups: the same counts and percentiles as the raw rows, kept by every writer."""

from __future__ import annotations

import asyncio
import math
import random
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from llm.cascade.results import ProbeResult
from llm.dashboard import series
from llm.dashboard.buckets import Buckets
from llm.history import histogram, local_time, rollups
from llm.history.recorder import BATCH_SIZE, HistoryRecorder
from llm.history.recorder import _save as save_batch
from llm.models import CascadeCall, Probe, Rollup, WrittenBy
from tests.dashboard_history import HOUR, call, written
from tests.subprocesses import ROOT, bot_env

PARIS = ZoneInfo("Europe/Paris")
DAY = timedelta(days=1)
# 2026-10-25 is the 25-hour day in Paris; the history runs over it.
FIRST = datetime(2026, 10, 18, 9, 41, tzinfo=PARIS)
LAST = datetime(2026, 10, 28, 17, 13, tzinfo=PARIS)


@pytest.fixture
def paris() -> Iterator[None]:
    with timezone.override(PARIS):
        yield


def probe_as(at: datetime, tier: str, *, ok: bool, latency: float | None, role: str = "") -> Probe:
    """A probe as the recorder saves it: a failed one keeps its latency (not counted in the histogram)."""
    row = Probe._default_manager.create(created=at, tier=tier, ok=ok, latency_ms=latency, role=role)
    written(row)
    return row


def random_history(seed: int, first: datetime = FIRST, last: datetime = LAST) -> None:
    """Probes and calls at random times: varied latencies, failures, and some console runs.

    Saved as the history writer saves them: in batches, each with its roll-ups.
    """
    rng = random.Random(seed)
    rows: list[WrittenBy] = []
    moment = first
    while moment < last:
        role = "console" if rng.random() < 0.15 else rng.choice(["", "bot", "worker"])
        if rng.random() < 0.65:
            ok = rng.random() > 0.15
            latency = rng.lognormvariate(5, 1.3) if rng.random() > 0.05 else None
            tier = rng.choice(["local", "openai"])
            rows.append(Probe(created=moment, tier=tier, ok=ok, latency_ms=latency, role=role))
        else:
            source = rng.choice(["local", "local", "openai", "fallback"])
            first_token = None if source == "fallback" else rng.lognormvariate(5.5, 0.8)
            latency = rng.lognormvariate(7, 0.7)
            rows.append(
                CascadeCall(
                    created=moment,
                    platform="twitch",
                    intent="ask",
                    source=source,
                    latency_ms=latency,
                    first_token_ms=first_token,
                    role=role,
                )
            )
        moment += timedelta(seconds=rng.randint(60, 2400))
    for start in range(0, len(rows), BATCH_SIZE):
        save_batch(rows[start : start + BATCH_SIZE])


@dataclass
class Raw:
    """What the raw rows say about one (series, key)."""

    count: int = 0
    ok: int = 0
    latencies: list[float] = field(default_factory=list)


def raw_counts(start: datetime, end: datetime, console: bool) -> dict[tuple[str, str], Raw]:
    found: dict[tuple[str, str], Raw] = {}
    probes = Probe._default_manager.filter(created__gte=start, created__lt=end)
    calls = CascadeCall._default_manager.filter(created__gte=start, created__lt=end)
    if not console:
        probes, calls = probes.exclude(role="console"), calls.exclude(role="console")
    for tier, ok, latency in probes.values_list("tier", "ok", "latency_ms"):
        raw = found.setdefault(("probe", tier), Raw())
        raw.count += 1
        if ok:
            raw.ok += 1
            if latency is not None:
                raw.latencies.append(latency)
    for source, latency, first_token in calls.values_list("source", "latency_ms", "first_token_ms"):
        reply = found.setdefault(("reply", source), Raw())
        reply.count += 1
        reply.ok += 1
        reply.latencies.append(latency)
        if first_token is not None:
            token = found.setdefault(("first_token", source), Raw())
            token.count += 1
            token.ok += 1
            token.latencies.append(first_token)
    return found


def exact_percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


def assert_in_bucket_of(estimate: float | None, exact: float) -> None:
    low, high = histogram.bounds_of(histogram.index(exact))
    assert estimate is not None and low <= estimate <= high, (exact, estimate)


def rollup_rows() -> dict[tuple[str, datetime, str, str, str], tuple[int, int, float, list[int]]]:
    rows = Rollup._default_manager.values_list(
        "period", "start", "scope", "series", "key", "count", "ok", "total_ms", "histogram"
    )
    return {(p, s, sc, se, k): (n, ok, round(ms, 6), hist) for p, s, sc, se, k, n, ok, ms, hist in rows}


@pytest.mark.django_db
@pytest.mark.usefixtures("paris")
@pytest.mark.parametrize("days", [7, 30, 90, 365])
@pytest.mark.parametrize("console", [False, True])
def test_windows_read_from_roll_ups_match_the_raw_rows(days: int, console: bool) -> None:
    random_history(seed=days)
    # Ends mid-hour, inside the history: the 7-day window also starts inside it.
    end = datetime(2026, 10, 27, 14, 23, 17, tzinfo=PARIS)
    buckets = Buckets.for_window(end - days * DAY, end)
    assert any(source != "raw" for source, _s, _e in series.pieces(buckets))

    result = series.aggregate(buckets, ("bot", "console") if console else ("bot",))

    expected = raw_counts(buckets.start, buckets.end, console)
    assert len(expected) >= 7  # probes of both tiers, replies and first tokens of several sources
    assert set(result.totals) == set(expected)
    for key, raw in expected.items():
        tally = result.total(*key)
        assert (tally.count, tally.ok) == (raw.count, raw.ok), key
        assert tally.total_ms == pytest.approx(sum(raw.latencies))
        p50, p95 = series.percentiles(tally)
        if raw.latencies:
            assert_in_bucket_of(p50, exact_percentile(raw.latencies, 0.5))
            assert_in_bucket_of(p95, exact_percentile(raw.latencies, 0.95))
        else:
            assert (p50, p95) == (None, None)


@pytest.mark.django_db
@pytest.mark.usefixtures("paris")
def test_console_rows_have_roll_ups_of_their_own() -> None:
    at = datetime(2026, 10, 20, 10, 5, tzinfo=PARIS)
    probe_as(at, "local", ok=True, latency=40.0, role="console")
    probe_as(at, "local", ok=True, latency=400.0, role="worker")
    call(at, "openai", latency=900.0, role="console")

    rows = Rollup._default_manager.filter(period="hour")

    assert sorted(rows.values_list("scope", "series", "key", "count")) == [
        ("bot", "probe", "local", 1),
        ("console", "probe", "local", 1),
        ("console", "reply", "openai", 1),
    ]
    console = rows.get(scope="console", series="probe")
    assert console.histogram == histogram.of([40.0])


@pytest.mark.django_db
@pytest.mark.usefixtures("paris")
def test_rebuild_from_raw_rows_gives_what_the_writer_kept() -> None:
    random_history(seed=11)
    kept = rollup_rows()
    assert len(kept) > 100

    counts = rollups.rebuild(chunk=50)

    assert rollup_rows() == kept
    # From the first whole local day: 2026-10-19 00:00 in Paris.
    since = datetime(2026, 10, 19, tzinfo=PARIS)
    assert counts["probes"] == Probe._default_manager.filter(created__gte=since).count()
    assert counts["calls"] == CascadeCall._default_manager.filter(created__gte=since).count()
    assert counts["rollups"] == sum(1 for key in kept if key[1] >= since)


@pytest.mark.django_db
@pytest.mark.usefixtures("paris")
def test_rebuild_recomputes_lost_or_wrong_roll_ups_from_the_first_whole_day() -> None:
    random_history(seed=12)
    kept = rollup_rows()
    since = datetime(2026, 10, 19, tzinfo=PARIS)
    Rollup._default_manager.filter(start__gte=since + 3 * DAY).delete()
    Rollup._default_manager.filter(start__lt=since + 3 * DAY).update(count=999)

    rollups.rebuild()

    after = rollup_rows()
    assert {key: value for key, value in after.items() if key[1] >= since} == {
        key: value for key, value in kept.items() if key[1] >= since
    }
    # Before the first whole day the raw rows cover, roll-ups are left as they are (even wrong).
    assert {value[0] for key, value in after.items() if key[1] < since} == {999}


@pytest.mark.django_db
@pytest.mark.usefixtures("paris")
def test_rebuild_keeps_roll_ups_older_than_the_raw_rows() -> None:
    random_history(seed=13)
    kept = rollup_rows()
    end = datetime(2026, 10, 28, tzinfo=PARIS)
    before = raw_counts(FIRST, end, console=False)
    # Retention removed the raw rows before the 22nd at 15:00: the 22nd is no longer whole.
    cutoff = datetime(2026, 10, 22, 15, tzinfo=PARIS)
    Probe._default_manager.filter(created__lt=cutoff).delete()
    CascadeCall._default_manager.filter(created__lt=cutoff).delete()

    counts = rollups.rebuild()

    assert rollup_rows() == kept
    since = datetime(2026, 10, 23, tzinfo=PARIS)
    assert counts["probes"] == Probe._default_manager.filter(created__gte=since).count()
    # The charts still count the rows retention removed, from the roll-ups kept.
    result = series.aggregate(Buckets.for_window(end - 90 * DAY, end), ("bot",))
    assert {key: result.total(*key).count for key in before} == {
        key: raw.count for key, raw in before.items()
    }


@pytest.mark.django_db
def test_rebuild_without_raw_rows_changes_nothing() -> None:
    Rollup._default_manager.create(
        period="day", start=datetime(2026, 1, 1, tzinfo=UTC), series="probe", key="local", count=5
    )

    assert rollups.rebuild() == {"probes": 0, "calls": 0, "rollups": 0}
    assert Rollup._default_manager.get().count == 5


@pytest.mark.django_db
@pytest.mark.usefixtures("paris")
@pytest.mark.parametrize(
    ("day", "hours"),
    [(datetime(2026, 3, 29, 12, tzinfo=PARIS), 23), (datetime(2026, 10, 25, 12, tzinfo=PARIS), 25)],
)
def test_rows_of_a_clock_change_day_land_in_its_local_day(day: datetime, hours: int) -> None:
    start = local_time.day_start(day)
    # 20 minutes into every hour of the local day, the first one before UTC midnight.
    for hour in range(hours):
        probe_as(start + hour * HOUR + timedelta(minutes=20), "local", ok=True, latency=100.0 + hour)
    kept = rollup_rows()

    days = Rollup._default_manager.filter(period="day").values_list("start", "count")
    hourly = Rollup._default_manager.filter(period="hour").order_by("start").values_list("start", "count")

    assert list(days) == [(start, hours)]
    assert list(hourly) == [(start + hour * HOUR, 1) for hour in range(hours)]
    assert local_time.next_day(start) - start == hours * HOUR
    # A 90-day chart has one bucket for that day, filled from its daily roll-up.
    end = start + 40 * DAY + timedelta(minutes=7)
    buckets = Buckets.for_window(end - 90 * DAY, end)
    cells = series.aggregate(buckets, ("bot",)).cells[("probe", "local")]
    assert buckets.unit == "day"
    assert {buckets.start_of(number): tally.count for number, tally in cells.items()} == {start: hours}
    # The rebuild puts them in the same local day (one row a day earlier makes this day whole).
    Rollup._default_manager.all().delete()
    Probe._default_manager.create(created=start - DAY, tier="openai", ok=True, latency_ms=1.0)
    rollups.rebuild()
    assert {key: value for key, value in rollup_rows().items() if key[4] == "local"} == kept


# -- several writers ------------------------------------------------------------------


def probes_per_hour() -> dict[datetime, int]:
    counts: dict[datetime, int] = {}
    for created in Probe._default_manager.values_list("created", flat=True):
        start = local_time.hour_start(created)
        counts[start] = counts.get(start, 0) + 1
    return counts


@pytest.mark.django_db(transaction=True)
async def test_two_recorders_writing_into_one_hour_add_up() -> None:
    first = HistoryRecorder(use_default_layer=False, batch_size=7)
    second = HistoryRecorder(use_default_layer=False, batch_size=5)
    for i in range(60):
        first.record_probe(ProbeResult("local", "http://127.0.0.1:1/v1", ok=i % 4 != 0, latency_ms=20.0 + i))
        second.record_probe(ProbeResult("local", "http://127.0.0.1:2/v1", ok=True, latency_ms=900.0 + i))

    # Their batches interleave: each adds to the hour's row the other has just written.
    assert list(await asyncio.gather(first.flush(), second.flush())) == [True, True]

    def check() -> None:
        hourly = dict(
            Rollup._default_manager.filter(period="hour", series="probe").values_list("start", "count")
        )
        assert hourly == probes_per_hour()
        assert sum(hourly.values()) == 120
        ok = sum(Rollup._default_manager.filter(period="day").values_list("ok", flat=True))
        assert ok == Probe._default_manager.filter(ok=True).count() == 105

    await asyncio.to_thread(check)


WRITER = """
import asyncio, sys, time
from llm.cascade.results import ProbeResult
from llm.history.recorder import BATCH_SIZE, HistoryRecorder
from llm.history.recorder import _save as save_batch

async def main(count, go):
    recorder = HistoryRecorder(use_default_layer=False, batch_size=10)
    time.sleep(max(go - time.time(), 0))
    for i in range(count):
        recorder.record_probe(ProbeResult("local", "", ok=i % 3 != 0, latency_ms=float(i % 700)))
        if i % 10 == 9:
            assert await recorder.flush()
    assert await recorder.flush()
    assert recorder.dropped == 0, recorder.dropped

asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
"""


def test_two_processes_writing_into_one_database_lose_no_counts(local_dir: Path) -> None:
    import subprocess
    import sys

    env = bot_env(local_dir)
    go = time.time() + 3  # both past their start-up, writing at once
    script = f"import django; django.setup()\n{WRITER}"
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(count), str(go)], env=env, cwd=ROOT, text=True)
        for count in (400, 300)
    ]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0]

    with sqlite3.connect(local_dir / "db.sqlite3") as db:
        probes, ok = db.execute("SELECT COUNT(*), SUM(ok) FROM llm_probe").fetchone()
        hours = db.execute("SELECT SUM(count), SUM(ok) FROM llm_rollup WHERE period = 'hour'").fetchone()
        days = db.execute("SELECT SUM(count), SUM(ok) FROM llm_rollup WHERE period = 'day'").fetchone()
    assert probes == 700
    assert hours == days == (700, ok)
