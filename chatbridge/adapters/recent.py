"""The ids of the commands an adapter took lately: a platform that delivers one message twice
(EventSub after a reconnection, a retried webhook) gets one reply, not two.

Owned by the adapter, not by its relay: a relay is rebuilt on every reconnection, which is
just when a redelivery comes. Bounded by age and by count.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

# Redeliveries come within seconds or minutes of the first delivery.
KEEP_FOR = 600.0  # seconds
KEEP_AT_MOST = 5_000  # ids, however busy the chat


class RecentIds:
    def __init__(
        self, clock: Callable[[], float], *, keep_for: float = KEEP_FOR, at_most: int = KEEP_AT_MOST
    ) -> None:
        self.clock = clock
        self.keep_for = keep_for
        self.at_most = at_most
        self._ids: OrderedDict[str, float] = OrderedDict()  # id -> when taken, oldest first

    def __len__(self) -> int:
        return len(self._ids)

    def seen(self, message_id: str) -> bool:
        """Whether `message_id` was taken already; remembers it when not."""
        now = self.clock()
        while self._ids and next(iter(self._ids.values())) + self.keep_for <= now:
            self._ids.popitem(last=False)
        if message_id in self._ids:
            return True
        self._ids[message_id] = now
        while len(self._ids) > self.at_most:
            self._ids.popitem(last=False)
        return False
