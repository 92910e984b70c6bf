"""The adapter's memory of the commands it took: a redelivery is recognised, and the memory
stays bounded by age and by count."""

from __future__ import annotations

from chatbridge.adapters.recent import RecentIds
from tests.fakes.clock import ManualClock


def test_an_id_is_seen_the_second_time_only() -> None:
    recent = RecentIds(ManualClock().now)
    assert not recent.seen("a")
    assert recent.seen("a")
    assert not recent.seen("b")


def test_ids_older_than_the_age_are_forgotten() -> None:
    clock = ManualClock()
    recent = RecentIds(clock.now, keep_for=600)
    recent.seen("old")
    clock.advance(599)
    assert recent.seen("old")  # still within its age (it is not taken again: the first time counts)
    clock.advance(2)
    assert not recent.seen("new")  # the lookup drops the expired ones first
    assert len(recent) == 1
    assert not recent.seen("old")


def test_it_never_holds_more_than_its_bound() -> None:
    recent = RecentIds(ManualClock().now, at_most=100)
    for n in range(1_000):
        recent.seen(str(n))
    assert len(recent) == 100
    assert recent.seen("999") and not recent.seen("0")
