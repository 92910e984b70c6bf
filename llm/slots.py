"""At most N calls in flight per tier, and a wait for a slot bounded by the message's deadline.

llama.cpp and LM Studio answer one request at a time: queueing chat behind them only
makes every reply late. A message whose expected wait (from recent answer times) would
not leave time for its own answer gives up its place at once.
"""

from __future__ import annotations

import asyncio
import math

# Waiters per slot beyond which a message does not even queue: memory stays bounded
# however fast chat goes.
MAX_WAITING_PER_SLOT = 16
# Weight of the newest answer time in the running average.
_ALPHA = 0.3


class Slots:
    def __init__(self, size: int) -> None:
        self.size = size
        self.in_flight = 0
        self.waiting = 0
        self.average_s: float | None = None
        self._semaphore: asyncio.Semaphore | None = None

    def expected_wait(self) -> float:
        if self.in_flight < self.size or self.average_s is None:
            return 0.0
        return math.ceil((self.waiting + 1) / self.size) * self.average_s

    async def acquire(self, remaining: float) -> str:
        """Empty once a slot is held, else why not: "Saturated" (gave up at once) or "Deadline"."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.size)
        if not self._semaphore.locked():
            await self._semaphore.acquire()  # a free permit: returns without suspending
            self.in_flight += 1
            return ""
        if self.waiting >= self.size * MAX_WAITING_PER_SLOT:
            return "Saturated"
        if self.expected_wait() + (self.average_s or 0.0) > remaining:
            return "Saturated"
        self.waiting += 1
        try:
            async with asyncio.timeout(remaining):
                await self._semaphore.acquire()
        except TimeoutError:
            return "Deadline"
        finally:
            self.waiting -= 1
        self.in_flight += 1
        return ""

    def release(self, answered_in: float | None = None) -> None:
        self.in_flight -= 1
        if answered_in is not None:
            self.average_s = (
                answered_in
                if self.average_s is None
                else _ALPHA * answered_in + (1 - _ALPHA) * self.average_s
            )
        if self._semaphore is not None:
            self._semaphore.release()
