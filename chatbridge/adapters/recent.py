"""The ids of the commands an adapter took lately: a platform that delivers one message twice
(EventSub after a reconnection, a retried webhook) gets one reply, not two.

Owned by the adapter, not by its relay: a relay is rebuilt on every reconnection, which is
just when a redelivery comes. Bounded by age and by count.
"""

from __future__ import annotations

from collections.abc import Callable

from chatbridge.recent import Recent

# Redeliveries come within seconds or minutes of the first delivery.
KEEP_FOR = 600.0  # seconds
KEEP_AT_MOST = 5_000  # ids, however busy the chat


class RecentIds(Recent):
    def __init__(
        self, clock: Callable[[], float], *, keep_for: float = KEEP_FOR, at_most: int = KEEP_AT_MOST
    ) -> None:
        # Counted from the first delivery: a redelivery does not extend the memory.
        super().__init__(clock, keep_for=keep_for, at_most=at_most, renew=False)

    def seen(self, message_id: str) -> bool:
        """Whether `message_id` was taken already; remembers it when not."""
        return self.note(message_id)
