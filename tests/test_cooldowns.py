"""Cooldowns per user and per channel, for each command, with a clock the test moves."""

from __future__ import annotations

from chatbridge.cooldowns import Cooldowns, Verdict


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def ask(cooldowns: Cooldowns, user: str = "u1", command: str = "ask", **kwargs: object) -> Verdict:
    values: dict[str, object] = {
        "user_seconds": 30.0,
        "channel_seconds": 5.0,
        "bypass": False,
        "notice": True,
    }
    values.update(kwargs)
    return cooldowns.check("twitch", "streamer", user, command, **values)  # type: ignore[arg-type]


def answered(cooldowns: Cooldowns, user: str = "u1", command: str = "ask", **kwargs: object) -> None:
    """A granted command whose reply went out: its cooldowns start now."""
    verdict = ask(cooldowns, user, command, **kwargs)
    assert verdict.ticket is not None
    cooldowns.sent(verdict.ticket)


def test_it_starts_the_user_cooldown_only_when_the_reply_is_sent() -> None:
    clock = Clock()
    cooldowns = Cooldowns(clock=clock)
    granted = ask(cooldowns)
    assert granted.ticket is not None

    clock.t += 50  # the answer took its time; the cooldown has not started yet
    cooldowns.sent(granted.ticket)
    clock.t += 29
    refused = ask(cooldowns)
    assert not refused.allowed and 0 < refused.wait <= 1
    clock.t += 1
    assert ask(cooldowns).allowed


def test_one_reply_in_flight_per_user() -> None:
    cooldowns = Cooldowns(clock=Clock())
    assert ask(cooldowns).allowed
    # Ten more !ask while the first is being answered: refused, no cost to anyone.
    assert not any(ask(cooldowns).allowed for _ in range(10))


def test_a_dropped_reply_releases_without_cooling() -> None:
    cooldowns = Cooldowns(clock=Clock())
    granted = ask(cooldowns)
    assert granted.ticket is not None
    cooldowns.release(granted.ticket)
    assert ask(cooldowns).allowed


def test_a_released_reservation_is_not_kept() -> None:
    cooldowns = Cooldowns(clock=Clock())
    for n in range(100):
        granted = ask(cooldowns, f"user{n}", channel_seconds=0)
        assert granted.ticket is not None
        cooldowns.release(granted.ticket)  # e.g. dropped by a full reply queue
    assert len(cooldowns) <= 1  # each newcomer found the previous slot forgettable


def test_a_lost_reply_stops_blocking_after_the_pending_timeout() -> None:
    clock = Clock()
    cooldowns = Cooldowns(clock=clock, pending_timeout=60)
    assert ask(cooldowns).allowed
    clock.t += 61
    assert ask(cooldowns).allowed


def test_the_channel_cooldown_applies_to_everyone_for_that_command() -> None:
    clock = Clock()
    cooldowns = Cooldowns(clock=clock)
    answered(cooldowns, "u1")

    assert not ask(cooldowns, "u2").allowed
    assert ask(cooldowns, "u2", command="chill").allowed  # another command, another cooldown
    clock.t += 5
    assert ask(cooldowns, "u2").allowed


def test_the_user_cooldown_is_per_command() -> None:
    clock = Clock()
    cooldowns = Cooldowns(clock=clock)
    answered(cooldowns, channel_seconds=0)
    assert not ask(cooldowns, channel_seconds=0).allowed
    assert ask(cooldowns, command="mention", channel_seconds=0).allowed


def test_bypass_ignores_every_cooldown() -> None:
    cooldowns = Cooldowns(clock=Clock())
    answered(cooldowns)
    assert all(ask(cooldowns, bypass=True).allowed for _ in range(5))


def test_only_the_first_refusal_asks_for_a_notice() -> None:
    clock = Clock()
    cooldowns = Cooldowns(clock=clock)
    answered(cooldowns)

    assert [ask(cooldowns).notify for _ in range(3)] == [True, False, False]
    clock.t += 30
    answered(cooldowns)
    assert ask(cooldowns).notify  # a new cooldown, a new notice


def test_a_setting_changed_in_the_admin_applies_at_once() -> None:
    clock = Clock()
    cooldowns = Cooldowns(clock=clock)
    answered(cooldowns, user_seconds=300, channel_seconds=0)
    clock.t += 20
    assert not ask(cooldowns, user_seconds=300, channel_seconds=0).allowed
    assert ask(cooldowns, user_seconds=10, channel_seconds=0).allowed
    assert ask(cooldowns, "u3", user_seconds=0, channel_seconds=0).allowed


def test_memory_stays_bounded_under_a_flood_of_users() -> None:
    clock = Clock()
    cooldowns = Cooldowns(clock=clock, max_users=100, max_channels=10)
    for n in range(10_000):
        answered(cooldowns, f"user{n}", channel_seconds=0)
    assert len(cooldowns) <= 110
    # The most recent users are still remembered.
    assert not ask(cooldowns, "user9999", channel_seconds=0).allowed


def test_a_channel_without_cooldowns_keeps_no_state_per_user() -> None:
    cooldowns = Cooldowns(clock=Clock())
    for n in range(1_000):
        answered(cooldowns, f"user{n}", user_seconds=0, channel_seconds=0)
    assert len(cooldowns) == 0


def test_finished_cooldowns_are_forgotten() -> None:
    clock = Clock()
    cooldowns = Cooldowns(clock=clock)
    for n in range(500):
        answered(cooldowns, f"user{n}", channel_seconds=0)
    assert len(cooldowns) == 500
    clock.t += 31  # every one of those cooldowns is over
    newcomer = ask(cooldowns, "late", channel_seconds=0)
    assert newcomer.ticket is not None
    assert len(cooldowns) == 1  # only the newcomer's reservation is left
    assert ask(cooldowns, "user0", channel_seconds=0).allowed


def test_the_channel_cooldown_gives_the_channel_one_notice() -> None:
    cooldowns = Cooldowns(clock=Clock())
    answered(cooldowns, "u1")
    kept = len(cooldowns)
    # A crowd turned away by the channel's cooldown: one notice for all, not one each.
    assert [ask(cooldowns, f"u{n}").notify for n in range(2, 6)] == [True, False, False, False]
    assert len(cooldowns) == kept  # refusals add no state per user


def test_no_notice_without_the_channel_asking_for_it() -> None:
    cooldowns = Cooldowns(clock=Clock())
    answered(cooldowns, "u1")
    assert not ask(cooldowns, "u1", notice=False).notify
    assert ask(cooldowns, "u1").notify  # the first notice is still there to give


def test_a_lengthened_cooldown_applies_from_the_next_reply() -> None:
    clock = Clock()
    cooldowns = Cooldowns(clock=clock)
    answered(cooldowns, user_seconds=10, channel_seconds=0)
    clock.t += 20
    answered(cooldowns, user_seconds=300, channel_seconds=0)  # the 10 s cooldown it was sent under is over
    clock.t += 20
    assert not ask(cooldowns, user_seconds=300, channel_seconds=0).allowed
