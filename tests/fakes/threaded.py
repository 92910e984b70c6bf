"""A fake server on its own event loop in a background thread, for sync code (views,
management commands) that calls it with blocking HTTP."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar


class Fake(Protocol):
    async def start(self) -> Any: ...

    async def close(self) -> None: ...


F = TypeVar("F", bound=Fake)


@contextmanager
def in_thread(fake: F, name: str) -> Iterator[F]:
    """Start `fake` on a new loop in a daemon thread; close it and the loop afterwards."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
        try:
            yield fake
        finally:
            asyncio.run_coroutine_threadsafe(fake.close(), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
