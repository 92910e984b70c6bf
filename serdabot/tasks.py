"""Stopping tasks so that they really stop.

Python 3.11's `asyncio.wait_for` loses a cancellation that arrives in the same loop
iteration as the end of the operation it wraps: it returns that operation's result
instead of raising (CPython gh-86296, fixed in 3.12). redis-py wraps every command it
sends in `wait_for`, so a task cancelled while it sends one (a channel-layer receive
starting its next `BZPOPMIN`, a shared-state read) goes on as if nothing had happened.
A layer receive then blocks until a message comes, and whoever awaited the task after
cancelling it waits forever: the test suite's 90-minute CI hang, and a `runbot` that
never finishes stopping.

So a cancellation is repeated until the task ends, and whoever waits can bound the wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any

# Seconds between two cancellations of a task that is still running. Long enough for a
# `finally` block to finish its own awaits (a state row written, a socket closed), short
# enough that a lost cancellation costs a stop that long.
RECANCEL_EVERY = 0.1
# The longest a stopping task's own cleanup (a state row, a note to the other workers) is waited for.
CLEANUP_WITHIN = 5.0


async def cancel_and_wait(
    tasks: Iterable[asyncio.Future[Any]], *, within: float | None = None
) -> set[asyncio.Future[Any]]:
    """Cancel `tasks` and wait until they end, cancelling again those that go on.

    Returns the tasks still running after `within` seconds (none when `within` is None).
    Their errors are retrieved, not raised: a task being stopped has nothing more to say.
    The caller's own cancellation is never swallowed.
    """
    given = list(tasks)
    pending: set[asyncio.Future[Any]] = {t for t in given if not t.done()}
    loop = asyncio.get_running_loop()
    give_up = None if within is None else loop.time() + within
    while pending:
        wait = RECANCEL_EVERY if give_up is None else min(RECANCEL_EVERY, give_up - loop.time())
        if wait <= 0:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=wait)
    for task in given:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" at exit
    return pending


async def finish_shielded(aw: Awaitable[Any], *, within: float) -> None:
    """Run `aw` to its end even while the caller is being cancelled, for at most `within` s.

    `asyncio.shield` lets the shielded work go on, but its caller stops waiting at the first
    cancellation, and `cancel_and_wait` repeats them: cleanup (a state row written, another
    worker told that a warm-up is abandoned) would then run unattended, and race what the
    stopping process closes next. Here the caller waits for it; a cancellation that came
    meanwhile is raised once it is done. Its own errors are retrieved, not raised.
    """
    task = asyncio.ensure_future(aw)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + within
    cancelled = False
    while not task.done() and loop.time() < give_up:
        try:
            await asyncio.wait([task], timeout=give_up - loop.time())
        except asyncio.CancelledError:
            cancelled = True
    if task.done() and not task.cancelled():
        task.exception()
    if cancelled:
        raise asyncio.CancelledError
