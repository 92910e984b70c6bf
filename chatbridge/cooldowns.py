"""Cooldowns per user and per channel, for each command, in memory.

A granted command holds a reservation until its reply is sent (the cooldown starts
then) or dropped (nothing starts). The reservation is what stops one user from
queueing ten `!ask` while the first answer is still being written.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Key = tuple[str, str, str, str]  # platform, channel, user id ("" for the channel), command


@dataclass(frozen=True, slots=True)
class Ticket:
    """A granted command, until its reply is sent or dropped."""

    platform: str
    channel: str
    user: str
    command: str
    user_seconds: float
    channel_seconds: float
    bypass: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    ticket: Ticket | None  # None: refused
    wait: float = 0.0  # seconds left when refused
    notify: bool = False  # the first refusal since the last grant: the one notice

    @property
    def allowed(self) -> bool:
        return self.ticket is not None


@dataclass(slots=True)
class _Slot:
    sent_at: float | None = None  # last reply sent: the cooldown runs from here
    pending: float = 0.0  # a reply in flight until (the expiry covers replies lost on the way)
    noticed: bool = False  # a notice was given since the last grant


class _Slots:
    """An LRU map: the least recently touched slots go first past `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots: OrderedDict[Key, _Slot] = OrderedDict()

    def __len__(self) -> int:
        return len(self._slots)

    def peek(self, key: Key) -> _Slot | None:
        return self._slots.get(key)

    def touch(self, key: Key) -> _Slot:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
            while len(self._slots) > self.limit:
                # Under a flood of distinct users the oldest cooldowns are forgotten early
                # rather than letting memory grow without bound.
                self._slots.popitem(last=False)
        else:
            self._slots.move_to_end(key)
        return slot


class Cooldowns:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_users: int = 10_000,
        max_channels: int = 1_000,
        pending_timeout: float = 120.0,
    ) -> None:
        self.clock = clock
        self.pending_timeout = pending_timeout
        self._users = _Slots(max_users)
        self._channels = _Slots(max_channels)

    def __len__(self) -> int:
        return len(self._users) + len(self._channels)

    def check(
        self,
        platform: str,
        channel: str,
        user: str,
        command: str,
        *,
        user_seconds: float,
        channel_seconds: float,
        bypass: bool = False,
    ) -> Verdict:
        """Grant the command (and reserve it) or refuse it with the time left."""
        ticket = Ticket(platform, channel, user, command, user_seconds, channel_seconds, bypass)
        if bypass:
            return Verdict(ticket)
        now = self.clock()
        user_key: Key = (platform, channel, user, command)
        channel_key: Key = (platform, channel, "", command)
        wait = max(
            self._left(self._users.peek(user_key), now, user_seconds),
            self._left(self._channels.peek(channel_key), now, channel_seconds),
        )
        if wait > 0:
            slot = self._users.touch(user_key)
            notify = not slot.noticed
            slot.noticed = True
            return Verdict(None, wait=wait, notify=notify)
        if user_seconds > 0:
            slot = self._users.touch(user_key)
            slot.pending, slot.noticed = now + self.pending_timeout, False
        if channel_seconds > 0:
            self._channels.touch(channel_key).pending = now + self.pending_timeout
        return Verdict(ticket)

    def sent(self, ticket: Ticket) -> None:
        """The reply went out: the cooldowns start now."""
        now = self.clock()
        for slot in (
            self._users.touch(self._user_key(ticket)),
            self._channels.touch(self._channel_key(ticket)),
        ):
            slot.pending, slot.sent_at = 0.0, now

    def release(self, ticket: Ticket) -> None:
        """No reply went out (dropped, refused by the platform, nothing to say): no cooldown."""
        if ticket.bypass:
            return
        for slot in (
            self._users.peek(self._user_key(ticket)),
            self._channels.peek(self._channel_key(ticket)),
        ):
            if slot is not None:
                slot.pending = 0.0

    @staticmethod
    def _left(slot: _Slot | None, now: float, seconds: float) -> float:
        if slot is None or seconds <= 0:
            return 0.0  # no cooldown configured (an older, longer setting no longer applies)
        if slot.pending > now:
            return max(seconds, 1.0)  # the cooldown has not even started yet
        if slot.sent_at is None:
            return 0.0
        # Measured with today's setting: a cooldown changed in the admin applies at once.
        return max(slot.sent_at + seconds - now, 0.0)

    @staticmethod
    def _user_key(ticket: Ticket) -> Key:
        return (ticket.platform, ticket.channel, ticket.user, ticket.command)

    @staticmethod
    def _channel_key(ticket: Ticket) -> Key:
        return (ticket.platform, ticket.channel, "", ticket.command)
