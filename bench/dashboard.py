"""Benchmark: the dashboard over 30 days of history on SQLite.

Fills a fresh SQLite database (in a temporary SERDABOT_LOCAL_DIR) with 30 days of
probes at one per 30 s for both tiers (172,800 rows), 100,000 calls and a few hundred
state changes, then times the dashboard page through Django's test client.

    .venv/bin/python bench/dashboard.py [--requests 7] [--keep DIR]

Target: median <= 300 ms for the 30-day and the 24-hour windows.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import benchenv  # bench/ is on sys.path when a benchmark runs as a script

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 300.0


def fill(
    now: datetime, *, days: int = 30, probe_every: int = 30, calls: int = 100_000, seed: int = 1
) -> dict[str, int]:
    """Bulk-insert a realistic history ending at `now`; returns row counts."""
    from llm.models import CascadeCall, Probe, Source, Tier, TierEvent

    rng = random.Random(seed)
    start = now - timedelta(days=days)
    steps = days * 86400 // probe_every
    # Outages: a few per tier, 2 to 90 minutes each, as (start_step, end_step).
    outages = {
        tier: sorted(
            (s, s + rng.randint(4, 180)) for s in (rng.randrange(steps) for _ in range(rng.randint(20, 60)))
        )
        for tier in Tier.values
    }
    batch: list[Probe] = []
    events: list[TierEvent] = []
    probes = 0
    for tier in Tier.values:
        down = outages[tier]
        index = 0
        for step in range(steps):
            while index < len(down) and down[index][1] <= step:
                index += 1
            failing = index < len(down) and down[index][0] <= step < down[index][1]
            created = start + timedelta(seconds=step * probe_every)
            if failing:
                batch.append(
                    Probe(created=created, tier=tier, ok=False, error="ConnectError", detail="refused")
                )
            else:
                batch.append(
                    Probe(created=created, tier=tier, ok=True, latency_ms=rng.lognormvariate(4.5, 0.6))
                )
            if len(batch) >= 5000:
                Probe._default_manager.bulk_create(batch)
                probes += len(batch)
                batch = []
        for begin, end in down:
            events.append(
                TierEvent(
                    created=start + timedelta(seconds=begin * probe_every),
                    tier=tier,
                    state="down",
                    error="ConnectError",
                    detail="refused",
                )
            )
            events.append(
                TierEvent(
                    created=start + timedelta(seconds=(begin + 2) * probe_every),
                    tier=tier,
                    state="cooling",
                    error="ConnectError",
                )
            )
            events.append(
                TierEvent(created=start + timedelta(seconds=end * probe_every), tier=tier, state="up")
            )
    Probe._default_manager.bulk_create(batch)
    probes += len(batch)
    TierEvent._default_manager.bulk_create(events)

    sources = [Source.LOCAL] * 80 + [Source.OPENAI] * 12 + [Source.FALLBACK] * 8
    span = days * 86400
    made = 0
    while made < calls:
        chunk = [
            CascadeCall(
                created=start + timedelta(seconds=rng.uniform(0, span)),
                platform=rng.choice(("twitch", "discord")),
                channel="bench",
                intent=rng.choice(("ask", "chill")),
                source=rng.choice(sources),
                latency_ms=rng.lognormvariate(6.5, 0.7),
            )
            for _ in range(min(5000, calls - made))
        ]
        CascadeCall._default_manager.bulk_create(chunk)
        made += len(chunk)
    return {"probes": probes, "calls": made, "tier_events": len(events)}


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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=7, help="requests per window (median reported)")
    parser.add_argument("--keep", help="use (and keep) this directory for the database instead of a temp one")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="serdabot-bench-") as tmp:
        local_dir = args.keep or tmp
        benchenv.setup_django(local_dir)
        from django.utils import timezone

        from llm.models import Probe

        if not Probe._default_manager.exists():
            began = time.perf_counter()
            counts = fill(timezone.now())
            print(f"filled {counts} in {time.perf_counter() - began:.1f} s")
        failed = False
        for window in ("30d", "24h", "7d", "1h"):
            timings = time_page(f"/?window={window}", args.requests)
            median = statistics.median(timings)
            verdict = "ok" if median <= TARGET_MS else "OVER TARGET"
            failed |= median > TARGET_MS and window in ("30d", "24h")
            print(
                f"window={window:>4}: median {median:6.1f} ms over {len(timings)} requests "
                f"(first, cold: {timings[0]:.1f} ms; min {min(timings):.1f}, "
                f"max {max(timings):.1f}) {verdict}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
