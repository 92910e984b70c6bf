"""Benchmark: the dashboard over a year of history, on SQLite or PostgreSQL.

Fills a fresh database with D days of probes every 30 s for both tiers, C calls and
N state changes, builds the roll-ups and incidents from them (`rebuildrollups`'s code),
then times the dashboard page through Django's test client for every window:
the median of --requests requests in a warm process, and the first request in a new
process (empty caches, a new database connection). Last, it times the history writer
keeping the roll-ups current as it saves rows.

    .venv/bin/python bench/dashboard.py --days 365 --state-changes 50000 --calls 1000000
    .venv/bin/python bench/dashboard.py ... --database-url postgres://postgres@127.0.0.1:5432/serdabot_bench

With --database-url, that PostgreSQL database is dropped and created afresh (never
point it at a database you use). --keep DIR keeps the SQLite file (or, with PostgreSQL,
the database) and reuses it, filled, on the next run.

Targets: every window <= 300 ms median and <= 600 ms on the first request; the writer
>= 2,000 rows/s with roll-ups.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import benchenv  # bench/ is on sys.path when a benchmark runs as a script

ROOT = Path(__file__).resolve().parent.parent
WINDOWS = ("1h", "24h", "7d", "30d", "90d", "365d")
MEDIAN_TARGET_MS = 300.0
FIRST_TARGET_MS = 600.0
WRITER_TARGET = 2000.0
PROBE_EVERY = 30
CHUNK = 10_000


def fresh_postgres(url: str) -> None:
    """Drop and create the database the URL names, through the server's `postgres` database."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or name in ("postgres", "template0", "template1"):
        raise SystemExit(f"--database-url must name a database of its own, got {name!r}")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _flapping(rng: random.Random, start: datetime, span: float, changes: int) -> list[tuple[datetime, str]]:
    """`changes` state changes of one tier: up/down flapping, some 429s and a few pauses."""
    moments = sorted(rng.uniform(0, span) for _ in range(changes))
    result: list[tuple[datetime, str]] = []
    for index, offset in enumerate(moments):
        if index % 2 == 0:
            state = rng.choices(("down", "cooling", "paused", "budget"), (90, 8, 1, 1))[0]
        else:
            state = "up"
        result.append((start + timedelta(seconds=offset), state))
    return result


def fill(now: datetime, *, days: int, state_changes: int, calls: int, seed: int = 1) -> dict[str, int]:
    """Bulk-insert a history ending at `now`: probes follow the state changes' outages."""
    from llm.models import CascadeCall, Probe, Source, Tier, TierEvent

    rng = random.Random(seed)
    start = now - timedelta(days=days)
    span = days * 86400.0
    per_tier = state_changes // len(Tier.values)
    events: list[Any] = []
    probes = 0
    for tier in Tier.values:
        changes = [(start, "up"), *_flapping(rng, start, span, per_tier - 1)]
        events += [
            TierEvent(
                created=at, tier=tier, state=state, error="" if state == "up" else "ConnectError", role="bot"
            )
            for at, state in changes
        ]
        down_at = [at for at, state in changes]
        steps = int(span // PROBE_EVERY)
        batch: list[Any] = []
        index = 0
        for step in range(steps):
            created = start + timedelta(seconds=step * PROBE_EVERY)
            while index + 1 < len(down_at) and down_at[index + 1] <= created:
                index += 1
            ok = changes[index][1] == "up"
            batch.append(
                Probe(
                    created=created,
                    tier=tier,
                    ok=ok,
                    latency_ms=rng.lognormvariate(4.5, 0.6) if ok else None,
                    error="" if ok else "ConnectError",
                    role="bot",
                )
            )
            if len(batch) >= CHUNK:
                Probe._default_manager.bulk_create(batch)
                probes += len(batch)
                batch = []
        Probe._default_manager.bulk_create(batch)
        probes += len(batch)
    TierEvent._default_manager.bulk_create(events, batch_size=CHUNK)
    sources = [Source.LOCAL] * 80 + [Source.OPENAI] * 12 + [Source.FALLBACK] * 8
    # In time order, as the writer appends them: rows of one hour sit together on disk.
    moments = sorted(rng.uniform(0, span) for _ in range(calls))
    made = 0
    while made < calls:
        chunk = []
        for offset in moments[made : made + CHUNK]:
            source = rng.choice(sources)
            chunk.append(
                CascadeCall(
                    created=start + timedelta(seconds=offset),
                    platform=rng.choice(("twitch", "discord")),
                    channel="bench",
                    intent=rng.choice(("ask", "chill")),
                    source=source,
                    latency_ms=rng.lognormvariate(6.5, 0.7),
                    first_token_ms=rng.lognormvariate(5.5, 0.6) if source != Source.FALLBACK else None,
                    role=rng.choice(("bot", "bot", "bot", "console")),
                )
            )
        CascadeCall._default_manager.bulk_create(chunk)
        made += len(chunk)
    return {"probes": probes, "calls": made, "state_changes": len(events)}


def time_page(path: str, requests: int) -> list[float]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True})
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    timings = []
    for _ in range(requests):
        began = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.status_code
    return timings


def first_request(local_dir: str, database_url: str, window: str) -> float:
    """The first request in a new process: no template, query or connection cached yet."""
    result = subprocess.run(
        [sys.executable, __file__, "--first-request", window, "--keep", local_dir]
        + (["--database-url", database_url] if database_url else []),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return float(json.loads(result.stdout.strip().splitlines()[-1])["ms"])


def writer_rate(rows: int) -> float:
    """Rows per second the history writer saves, roll-ups included, into the filled database."""
    import asyncio

    from llm.cascade.results import CascadeResult, ProbeResult
    from llm.history.recorder import HistoryRecorder

    recorder = HistoryRecorder(use_default_layer=False, max_queue=rows + 1)
    for i in range(rows):
        if i % 3:
            result = CascadeResult("ok", "local", 900.0 + i % 700, {}, first_token_ms=300.0 + i % 200)
            recorder.record_call(platform="twitch", intent="ask", result=result, channel="bench")
        else:
            recorder.record_probe(
                ProbeResult(tier="local", url="http://x/v1", ok=True, latency_ms=80.0 + i % 50)
            )
    assert recorder.pending == rows
    began = time.perf_counter()
    assert asyncio.run(recorder.flush())
    seconds = time.perf_counter() - began
    assert recorder.written == rows, (recorder.written, recorder.dropped)
    forget_writer_rows()
    return rows / seconds


def forget_writer_rows() -> None:
    """Take the writer's rows (role "other": this process) out again, roll-ups included.

    Left in, 20,000 calls in the current hour would make every later run's short windows
    read a stream no channel has.
    """
    from django.db import transaction
    from django.utils import timezone

    from llm.history import rollups
    from llm.history.local_time import day_start
    from llm.models import CascadeCall, Probe, Rollup

    with transaction.atomic():
        for model in (Probe, CascadeCall):
            model._default_manager.filter(role="other").delete()
        since = day_start(timezone.now()) - timedelta(days=1)
        Rollup._default_manager.filter(start__gte=since).delete()
        tallies = rollups.Tallies()
        tallies.rows_of(Probe._default_manager.filter(created__gte=since).iterator())
        tallies.rows_of(CascadeCall._default_manager.filter(created__gte=since).iterator())
        rollups.apply(tallies)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--state-changes", type=int, default=50_000)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="", help="a PostgreSQL database to drop, create and fill")
    parser.add_argument("--keep", help="keep (and reuse) the filled database: SQLite in this directory")
    parser.add_argument("--requests", type=int, default=7, help="warm requests per window (median reported)")
    parser.add_argument("--writer-rows", type=int, default=20_000)
    parser.add_argument("--first-request", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.first_request:  # the child process of first_request()
        benchenv.setup_django(args.keep, database_url=args.database_url)
        [ms] = time_page(f"/?window={args.first_request}", 1)
        print(json.dumps({"ms": ms}))
        return 0

    with tempfile.TemporaryDirectory(prefix="serdabot-bench-") as tmp:
        local_dir = args.keep or tmp
        reuse = bool(args.keep)
        if args.database_url and not reuse:
            fresh_postgres(args.database_url)
        benchenv.setup_django(local_dir, database_url=args.database_url)
        from django.db import connection
        from django.utils import timezone

        from llm.history import periods, rollups
        from llm.models import Probe

        print(f"database: {connection.vendor} {connection.settings_dict['NAME']}")
        if not Probe._default_manager.exists():
            began = time.perf_counter()
            counts = fill(timezone.now(), days=args.days, state_changes=args.state_changes, calls=args.calls)
            print(f"filled {counts} in {time.perf_counter() - began:.0f} s")
            began = time.perf_counter()
            built = rollups.rebuild()
            found = periods.rebuild()
            print(
                f"rebuildrollups: {built['rollups']} roll-ups, {found['incidents']} incidents, "
                f"{found['absences']} absences in {time.perf_counter() - began:.0f} s"
            )
        failed = False
        print(
            f"{'window':>7}  {'median':>9}  {'first':>9}  "
            f"(targets {MEDIAN_TARGET_MS:.0f} / {FIRST_TARGET_MS:.0f} ms)"
        )
        for window in WINDOWS:
            connection.close()
            first = first_request(local_dir, args.database_url, window)
            timings = time_page(f"/?window={window}", args.requests)
            median = statistics.median(timings)
            over = median > MEDIAN_TARGET_MS or first > FIRST_TARGET_MS
            failed |= over
            print(f"{window:>7}  {median:6.1f} ms  {first:6.1f} ms  {'OVER TARGET' if over else 'ok'}")
        rate = writer_rate(args.writer_rows)
        failed |= rate < WRITER_TARGET
        print(
            f"writer with roll-ups: {rate:,.0f} rows/s ({args.writer_rows} rows) "
            f"{'ok' if rate >= WRITER_TARGET else 'UNDER TARGET'}"
        )
        if args.database_url and not reuse:
            connection.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
