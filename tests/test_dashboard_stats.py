"""The dashboard's aggregations, against a history built at known times."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from llm.dashboard import stats
from llm.dashboard.buckets import Buckets
from tests.dashboard_history import HOUR, call, event, fresh_bucket_cache, outage_history, probe

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_bucket_cache")]
__all__ = ["fresh_bucket_cache"]


def test_it_computes_uptime_per_span_and_tier() -> None:
    now = timezone.now()
    probe(now - HOUR)
    probe(now - 2 * HOUR, ok=False, error="ConnectError")
    probe(now - 3 * 24 * HOUR)
    probe(now - 3 * 24 * HOUR, ok=False, error="ConnectError")
    probe(now - 4 * 24 * HOUR)
    probe(now - 20 * 24 * HOUR, ok=False, error="ConnectError")
    probe(now - 40 * 24 * HOUR, ok=False, error="ConnectError")  # outside every span
    probe(now - HOUR, "openai")

    result = stats.uptime(now)

    assert result["local"]["24h"] == stats.Ratio(1, 2)
    assert result["local"]["7d"] == stats.Ratio(3, 5)
    assert result["local"]["30d"] == stats.Ratio(3, 6)
    assert result["local"]["30d"].percent == 50.0
    assert result["openai"]["24h"].percent == 100.0


def test_it_finds_incidents_spanning_the_start_inside_and_ongoing() -> None:
    now = timezone.now()
    outage_history(now)

    found = stats.incidents(now - 24 * HOUR, now)

    assert [(i.tier, i.start, i.end, i.error) for i in found] == [
        ("openai", now - 2 * HOUR, None, "AuthenticationError"),
        ("local", now - 10 * HOUR, now - 9.5 * HOUR, "HTTP503"),
        # down then cooling is one incident, from the first bad state to the recovery.
        ("local", now - 26 * HOUR, now - 23 * HOUR, "ReadTimeout"),
    ]
    ongoing, inside, spanning = found
    assert ongoing.ongoing and ongoing.duration(now) == 2 * HOUR
    assert inside.duration(now) == timedelta(minutes=30)
    assert spanning.duration(now) == 3 * HOUR
    assert spanning.overlap(now - 24 * HOUR, now, now) == HOUR
    assert len(stats.incidents(now - 7 * 24 * HOUR, now)) == 4


def test_it_sums_downtime_per_month_across_month_boundaries() -> None:
    now = timezone.now()
    month_start = stats.month_starts(now, 1)[0]
    # Two hours down across the start of this month, one of them in it.
    event(month_start - HOUR, "local", "down", "ConnectError")
    event(month_start + HOUR, "local", "up")

    this_month, last_month, _ = stats.monthly_summary(now)

    assert (this_month.incidents, this_month.downtime) == (1, HOUR)
    assert (last_month.incidents, last_month.downtime) == (1, HOUR)


def test_it_tells_the_current_state_and_since_when() -> None:
    now = timezone.now()
    outage_history(now)
    event(now - HOUR, "openai", "cooling", "AuthenticationError")

    openai = stats.current_state("openai")
    local = stats.current_state("local")

    assert (openai.state, openai.since, openai.error) == ("cooling", now - HOUR, "AuthenticationError")
    assert (local.state, local.since) == ("up", now - 9.5 * HOUR)


def test_without_state_changes_the_latest_probes_tell_the_state() -> None:
    now = timezone.now()
    assert stats.current_state("local").state == "unknown"
    probe(now - 3 * HOUR)
    probe(now - 2 * HOUR, ok=False, error="ConnectError")
    probe(now - HOUR, ok=False, error="ConnectError")

    state = stats.current_state("local")

    assert (state.state, state.since, state.error) == ("down", now - 2 * HOUR, "ConnectError")


def test_it_computes_latency_percentiles_per_bucket() -> None:
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    buckets = Buckets.for_window(now - 24 * HOUR, now)
    assert buckets.seconds == 1800
    start = buckets.start_of(buckets.last)
    for i, latency in enumerate(range(1, 101)):  # 1..100 ms in the newest bucket
        probe(start + timedelta(seconds=i), latency=float(latency))
    probe(start + timedelta(seconds=200), ok=False, error="ConnectError")  # failures have no latency

    points = stats.latency(buckets, now)["local"]

    assert [(p.start, p.p50, p.p95, p.count) for p in points] == [(start, 50.0, 95.0, 100)]


def test_kept_buckets_give_the_same_answer_and_new_rows_still_count() -> None:
    now = timezone.now()
    buckets = Buckets.for_window(now - 24 * HOUR, now)
    probe(now - 5 * HOUR, latency=10.0)
    call(now - 5 * HOUR, "local")
    first = stats.latency(buckets, now), stats.replies(buckets, now).counts

    again = stats.latency(buckets, now), stats.replies(buckets, now).counts
    probe(now - timedelta(minutes=1), latency=30.0)  # the open bucket is always read afresh
    later = stats.latency(buckets, now)["local"]

    assert again == first
    assert [p.p50 for p in later] == [10.0, 30.0]


def test_it_counts_replies_by_source_and_the_fallback_share() -> None:
    now = timezone.now()
    for source, n in (("local", 6), ("openai", 2), ("fallback", 2)):
        for i in range(n):
            call(now - timedelta(minutes=10 + i), source)
    call(now - 3 * 24 * HOUR, "fallback")  # outside the window

    result = stats.replies(Buckets.for_window(now - 24 * HOUR, now), now)

    assert result.totals == {"local": 6, "openai": 2, "fallback": 2}
    assert result.fallback_share == 20.0
    assert sum(sum(c.values()) for c in result.counts.values()) == 10
