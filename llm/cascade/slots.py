"""At most N calls in flight per tier, and a wait for a slot bounded by the message's deadline.

llama.cpp and LM Studio answer one request at a time: queueing chat behind them only
makes every reply late. A message whose expected wait (from recent answer times) would
not leave time for its own answer gives up its place at once.

A call that has shown no first token for several times the tier's usual wait, while no
other call to the tier streams, means the tier is stuck, not busy (LM Studio listing
models while its completions hang). From then on messages skip the tier at once, free
slot or not, instead of queueing behind it until the first-token clock tells: a hang
costs the messages already sent to it, not every one that arrives before it is known.
A call that streams proves the server works: one waiting behind it on a server that
answers one request at a time is queued, not stuck, and its wait counts from the moment
the call ahead ended. Only a tier with a later one still able to answer is skipped this
way: the last tier is waited for (its first-token clock bounds the wait), since skipping
it would trade a slow answer for a canned phrase.

With shared leases (Redis, several workers), the bound holds across every worker: a
slot here is only taken once a lease is held there too, and a call stuck in another
worker counts as stuck here.
"""

from __future__ import annotations

import asyncio
import math
import time

from llm.cascade.shared import SharedLeases

# Waiters per slot beyond which a message does not even queue: memory stays bounded
# however fast chat goes.
MAX_WAITING_PER_SLOT = 16
# Weight of the newest time in the running averages.
_ALPHA = 0.3
# How often a message waiting for another worker's call to finish asks again.
SHARED_POLL = 0.02
# How often a waiter asks Redis again whether calls stuck here still stream elsewhere.
RECHECK = 0.1
# A call with no first token after this many usual waits for one makes the tier look stuck...
STUCK_FACTOR = 3.0
# ...and never sooner than this: no first token seen yet, or first tokens in milliseconds.
STUCK_FLOOR = 1.0

Holder = asyncio.Task[object] | None


class Slots:
    def __init__(self, size: int, shared: SharedLeases | None = None) -> None:
        self.size = size
        self.shared = shared
        self.in_flight = 0
        self.waiting = 0
        self.average_s: float | None = None  # a whole answer
        self.first_token_s: float | None = None  # its first token
        self._semaphore: asyncio.Semaphore | None = None
        # Calls in flight here, by the task that holds the slot: those still waiting for their
        # first token (since when), and those streaming.
        self._no_token_since: dict[Holder, float] = {}
        self._streaming: set[Holder] = set()

    @property
    def stuck_after(self) -> float:
        """Seconds without a first token after which a call means the tier is stuck."""
        return max(STUCK_FLOOR, STUCK_FACTOR * (self.first_token_s or 0.0))

    def stuck_in(self) -> float:
        """Seconds until this process's calls look stuck (<= 0: they do now)."""
        if not self._no_token_since or self._streaming:
            return math.inf
        return min(self._no_token_since.values()) + self.stuck_after - time.monotonic()

    def expected_wait(self) -> float:
        if self.in_flight < self.size or self.average_s is None:
            return 0.0
        return math.ceil((self.waiting + 1) / self.size) * self.average_s

    async def acquire(self, remaining: float, *, skip_stuck: bool = True) -> str:
        """Empty once a slot is held, else why not: "Stuck" (a call in flight looks stuck; only
        with `skip_stuck`), "Saturated" (gave up at once) or "Deadline" (waited in vain).

        The slot belongs to the calling task: `first_token` and `release` are called from it.
        """
        started = time.monotonic()
        refused = await self._acquire_local(remaining, skip_stuck)
        if refused:
            return refused
        if self.shared is not None:
            try:
                refused = await self._acquire_shared(remaining - (time.monotonic() - started), skip_stuck)
            except BaseException:  # cancelled while polling Redis: the local permit must come back
                self._release_local(None)
                raise
            if refused:
                self._release_local(None)
                return refused
        # From now on the call is out: waiting for another worker's lease is not being stuck.
        self._no_token_since[asyncio.current_task()] = time.monotonic()
        return ""

    async def _acquire_local(self, remaining: float, skip_stuck: bool) -> str:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.size)
        if skip_stuck and await self._stuck():
            return "Stuck"
        if not self._semaphore.locked():
            await self._semaphore.acquire()  # a free permit: returns without suspending
            self.in_flight += 1
            return ""
        if self.waiting >= self.size * MAX_WAITING_PER_SLOT:
            return "Saturated"
        if self.expected_wait() + (self.average_s or 0.0) > remaining:
            return "Saturated"
        give_up_at = time.monotonic() + remaining
        self.waiting += 1
        try:
            # Wake when a slot frees, when the deadline comes, or when the calls in flight start
            # to look stuck: then the tier is skipped, not waited for.
            while True:
                left = give_up_at - time.monotonic()
                if left <= 0:
                    return "Deadline"
                if not skip_stuck:
                    wait = left
                elif await self._stuck():
                    return "Stuck"
                else:
                    # Until the calls here would look stuck; else (one streams here, or in another
                    # worker for Redis) soon again: the one that streams may end any moment.
                    stuck_in = self.stuck_in()
                    wait = min(left, stuck_in if 0 < stuck_in < math.inf else RECHECK)
                try:
                    async with asyncio.timeout(wait):
                        await self._semaphore.acquire()
                    break
                except TimeoutError:
                    continue
        finally:
            self.waiting -= 1
        self.in_flight += 1
        return ""

    async def _stuck(self) -> bool:
        """Do the calls in flight look stuck? Here first; then, with shared leases, in every
        worker's view (another worker's call may be streaming)."""
        if self.stuck_in() > 0:
            return False
        if self.shared is None:
            return True
        verdict = await self.shared.stuck(self.stuck_after)
        return True if verdict is None else verdict

    async def _acquire_shared(self, remaining: float, skip_stuck: bool) -> str:
        assert self.shared is not None
        # Leave the answer itself time: waiting longer than that only to time out is no use.
        give_up_at = time.monotonic() + remaining - (self.average_s or 0.0)
        stuck_after = self.stuck_after if skip_stuck else math.inf
        while True:
            lease = await self.shared.try_acquire(stuck_after=stuck_after)
            if lease in ("held", "down"):  # down: this process's bound is all there is
                return ""
            if lease == "stuck":
                return "Stuck"
            if time.monotonic() + SHARED_POLL > give_up_at:
                return "Saturated"
            await asyncio.sleep(SHARED_POLL)

    async def first_token(self) -> None:
        """The calling task's call streams: it is not stuck, here or for other workers."""
        task = asyncio.current_task()
        since = self._no_token_since.pop(task, None)
        self._streaming.add(task)
        if since is not None:
            self.observed_first_token(time.monotonic() - since)
        if self.shared is not None:
            await self.shared.first_token()

    def observed_first_token(self, seconds: float) -> None:
        """A first token came `seconds` after the request (a chat call, or a warm-up or probe:
        a worker that just started knows the tier's usual wait before chat has shown it)."""
        self.first_token_s = _average(self.first_token_s, seconds)

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
        task = asyncio.current_task()
        self._no_token_since.pop(task, None)
        if task in self._streaming:
            self._streaming.discard(task)
            # The server just finished an answer: the calls queued behind it start their wait now.
            now = time.monotonic()
            for holder, since in self._no_token_since.items():
                self._no_token_since[holder] = max(since, now)
        if answered_in is not None:
            self.average_s = _average(self.average_s, answered_in)
        if self._semaphore is not None:
            self._semaphore.release()


def _average(average: float | None, newest: float) -> float:
    return newest if average is None else _ALPHA * newest + (1 - _ALPHA) * average
