"""Cooldowns per user and per channel, for each command, in memory.

A granted command holds a reservation for its user until its reply is sent (the
cooldown starts then), dropped, or replaced by the adapter's own fallback (see
`chatbridge.adapters.relay`): the relay settles every ticket, so the reservation ends
with the reply. `pending_timeout` is only a safety net. The reservation is what stops
one user from queueing ten `!ask` while the first answer is still being written. The
channel's cooldown takes no reservation: several viewers' `!ask` may be in flight at
once (the tiers bound them), and the channel cooldown counts replies actually sent.

Only live state is kept: a slot is forgotten once its cooldown (or reservation) is
over, a cooldown of 0 s keeps nothing, and a refusal adds nothing. Past `max_users`
slots (a flood of distinct users faster than any platform lets a bot reply) the
least recently used go first, so memory stays bounded.
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
    expires: float = 0.0  # after this the slot holds nothing: it may be forgotten


class _Slots:
    """An LRU map of live slots: expired ones go first, then the least recently touched
    past `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots: OrderedDict[Key, _Slot] = OrderedDict()

    def __len__(self) -> int:
        return len(self._slots)

    def peek(self, key: Key, now: float) -> _Slot | None:
        slot = self._slots.get(key)
        return slot if slot is not None and slot.expires > now else None

    def touch(self, key: Key, now: float) -> _Slot:
        slot = self._slots.get(key)
        if slot is not None and slot.expires > now:
            self._slots.move_to_end(key)
            return slot
        self._slots.pop(key, None)
        self._forget(now)
        slot = self._slots[key] = _Slot()
        return slot

    def _forget(self, now: float) -> None:
        """Make room for one more slot."""
        # Touched order is close to expiry order, so expired slots gather at the front:
        # a quiet chat keeps only the users who are actually cooling down.
        while self._slots:
            oldest = next(iter(self._slots.values()))
            if oldest.expires > now and len(self._slots) < self.limit:
                return
            # Past the limit (a flood of distinct users) the oldest cooldowns are forgotten
            # early rather than letting memory grow without bound.
            self._slots.popitem(last=False)


class Cooldowns:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_users: int = 10_000,
        max_channels: int = 1_000,
        pending_timeout: float = 60.0,
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
        notice: bool = False,
    ) -> Verdict:
        """Grant the command (and reserve it) or refuse it with the time left.

        With `notice`, the first refusal of each cooldown says so (`Verdict.notify`): a
        user's own cooldown gives that user one notice, the channel's cooldown gives the
        channel one, however many people it turns away. A refusal never adds a slot.
        """
        ticket = Ticket(platform, channel, user, command, user_seconds, channel_seconds, bypass)
        if bypass:
            return Verdict(ticket)
        now = self.clock()
        user_key, channel_key = self._user_key(ticket), self._channel_key(ticket)
        user_slot = self._users.peek(user_key, now)
        channel_slot = self._channels.peek(channel_key, now)
        user_wait = self._left(user_slot, now, user_seconds)
        channel_wait = self._left(channel_slot, now, channel_seconds)
        if user_wait > 0 or channel_wait > 0:
            slot = user_slot if user_wait > 0 else channel_slot
            assert slot is not None  # a positive wait comes from an existing slot
            notify = notice and not slot.noticed
            slot.noticed = slot.noticed or notify
            return Verdict(None, wait=max(user_wait, channel_wait), notify=notify)
        if user_seconds > 0:
            slot = self._users.touch(user_key, now)
            slot.pending, slot.noticed = now + self.pending_timeout, False
            slot.expires = max(slot.expires, slot.pending)
        if channel_slot is not None:
            channel_slot.noticed = False  # a grant: the next refusal may notify again
        return Verdict(ticket)

    def sent(self, ticket: Ticket) -> None:
        """The reply went out: the cooldowns start now.

        Nothing is kept for a cooldown of 0 s: a channel without cooldowns holds no state
        per user however many people chat.
        """
        now = self.clock()
        for slots, key, seconds in (
            (self._users, self._user_key(ticket), ticket.user_seconds),
            (self._channels, self._channel_key(ticket), ticket.channel_seconds),
        ):
            if seconds > 0:
                slot = slots.touch(key, now)
                slot.pending, slot.sent_at, slot.expires = 0.0, now, now + seconds

    def release(self, ticket: Ticket) -> None:
        """No reply went out (dropped, refused by the platform, nothing to say): no cooldown."""
        if ticket.bypass:
            return
        now = self.clock()
        for slot, seconds in (
            (self._users.peek(self._user_key(ticket), now), ticket.user_seconds),
            (self._channels.peek(self._channel_key(ticket), now), ticket.channel_seconds),
        ):
            if slot is not None:
                slot.pending = 0.0
                # Only an earlier reply's cooldown (if any) is left to remember.
                slot.expires = slot.sent_at + seconds if slot.sent_at is not None else now

    @staticmethod
    def _left(slot: _Slot | None, now: float, seconds: float) -> float:
        if slot is None or seconds <= 0:
            return 0.0  # no cooldown configured (an older, longer setting no longer applies)
        if slot.pending > now:
            return max(seconds, 1.0)  # the cooldown has not even started yet
        if slot.sent_at is None:
            return 0.0
        # Measured with today's setting: a cooldown shortened in the admin applies at once
        # (one lengthened applies from the next reply: a slot lives as long as the setting
        # it was started under).
        return max(slot.sent_at + seconds - now, 0.0)

    @staticmethod
    def _user_key(ticket: Ticket) -> Key:
        return (ticket.platform, ticket.channel, ticket.user, ticket.command)

    @staticmethod
    def _channel_key(ticket: Ticket) -> Key:
        return (ticket.platform, ticket.channel, "", ticket.command)
