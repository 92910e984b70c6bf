"""At most N calls in flight per tier, and a wait for a slot bounded by the message's deadline.

llama.cpp and LM Studio answer one request at a time: queueing chat behind them only
makes every reply late. A message whose expected wait (from recent answer times) would
not leave time for its own answer gives up its place at once.

With shared leases (Redis, several workers), the bound holds across every worker: a
slot here is only taken once a lease is held there too.
"""

from __future__ import annotations

import asyncio
import math
import time

from llm.shared import SharedLeases

# Waiters per slot beyond which a message does not even queue: memory stays bounded
# however fast chat goes.
MAX_WAITING_PER_SLOT = 16
# Weight of the newest answer time in the running average.
_ALPHA = 0.3
# How often a message waiting for another worker's call to finish asks again.
SHARED_POLL = 0.02


class Slots:
    def __init__(self, size: int, shared: SharedLeases | None = None) -> None:
        self.size = size
        self.shared = shared
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
        started = time.monotonic()
        refused = await self._acquire_local(remaining)
        if refused or self.shared is None:
            return refused
        try:
            refused = await self._acquire_shared(remaining - (time.monotonic() - started))
        except BaseException:  # cancelled while polling Redis: the local permit must come back
            self._release_local(None)
            raise
        if refused:
            self._release_local(None)
        return refused

    async def _acquire_local(self, remaining: float) -> str:
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

    async def _acquire_shared(self, remaining: float) -> str:
        assert self.shared is not None
        # Leave the answer itself time: waiting longer than that only to time out is no use.
        give_up_at = time.monotonic() + remaining - (self.average_s or 0.0)
        while True:
            held = await self.shared.try_acquire()
            if held is None or held:  # None: Redis is down, this process's bound is all there is
                return ""
            if time.monotonic() + SHARED_POLL > give_up_at:
                return "Saturated"
            await asyncio.sleep(SHARED_POLL)

    async def busy_elsewhere(self) -> bool:
        """Another worker has a call to this tier in flight (shared leases only)."""
        return self.shared is not None and await self.shared.busy()

    async def release(self, answered_in: float | None = None) -> None:
        # Local first: a cancellation during the Redis round trip must not leak this process's slot
        # (a shared lease that is never released expires by itself).
        self._release_local(answered_in)
        if self.shared is not None:
            await self.shared.release()

    def _release_local(self, answered_in: float | None) -> None:
        self.in_flight -= 1
        if answered_in is not None:
            self.average_s = (
                answered_in
                if self.average_s is None
                else _ALPHA * answered_in + (1 - _ALPHA) * self.average_s
            )
        if self._semaphore is not None:
            self._semaphore.release()
