"""A clock the test moves by hand: rate limits and cooldowns without real waits."""

from __future__ import annotations

import asyncio


class ManualClock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.t = start
        self._tick = asyncio.Event()
        self.sleepers = 0  # tasks waiting in sleep(): lets a test see the limiter is holding

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        target = self.t + seconds
        self.sleepers += 1
        try:
            while self.t < target:
                tick = self._tick
                await tick.wait()
        finally:
            self.sleepers -= 1

    def advance(self, seconds: float) -> None:
        self.t += seconds
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()
