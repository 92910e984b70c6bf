"""Running an adapter's parts side by side: when one stops, all stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from serdabot.tasks import cancel_and_wait


async def first_done(*aws: Awaitable[Any]) -> None:
    """Wait until one of `aws` is done (its result or error is left to the caller)."""
    futures = [asyncio.ensure_future(a) for a in aws]
    await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)


async def run_until_failure(*aws: Awaitable[None]) -> None:
    """Run all of `aws`; the first to end (normally or not) cancels the others, its error is raised."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait(tasks)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
