"""The Discord adapter's memory of channels it has seen: bounded, and forgotten when idle."""

from __future__ import annotations

from chatbridge.adapters.discord.channels import SeenChannels
from tests.fakes.clock import ManualClock


def test_it_says_first_sight_once_per_channel() -> None:
    seen = SeenChannels(ManualClock().now)
    assert [seen.first_sight(c) for c in ("1", "2", "1", "2")] == [True, True, False, False]


def test_it_never_holds_more_than_its_limit_and_forgets_the_least_recent() -> None:
    seen = SeenChannels(ManualClock().now, limit=100)
    for n in range(10_000):
        seen.first_sight("busy")  # spoken in all along: never the one forgotten
        seen.first_sight(str(n))
        assert len(seen) <= 100

    assert not seen.first_sight("busy")
    assert not seen.first_sight("9999")
    assert seen.first_sight("0")


def test_a_channel_idle_past_the_expiry_is_forgotten() -> None:
    clock = ManualClock()
    seen = SeenChannels(clock.now, idle=60)
    seen.first_sight("quiet")
    clock.advance(30)
    seen.first_sight("lively")
    clock.advance(30)

    assert seen.first_sight("quiet")  # 60 s idle: forgotten
    assert not seen.first_sight("lively")
    assert len(seen) == 2
    clock.advance(61)
    seen.first_sight("new")
    assert len(seen) == 1
