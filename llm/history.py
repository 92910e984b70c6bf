"""Availability history, written off the hot path.

`record_*()` only appends to a bounded in-memory queue (when it is full the row is
dropped and counted: chat must never wait on the database). A background task
writes the rows in batches from a thread, then pushes each batch to the dashboard's
channel-layer group as one message. Call these from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings
from django.db import models, reset_queries

from llm.models import BootDetection, CascadeCall, Probe, TierEvent
from llm.results import CascadeResult, ProbeResult

log = logging.getLogger("llm.history")

DASHBOARD_GROUP = "llm.dashboard"
# Rows waiting for the writer. Past this they are dropped and counted: under a flood of
# chat, memory stays flat and the bot keeps answering; the history loses the overflow.
MAX_QUEUE = 2_000
BATCH_SIZE = 200
# How long a row may wait in memory before the writer saves it anyway.
FLUSH_EVERY = 0.5

_KINDS: dict[type[models.Model], str] = {
    Probe: "probe",
    CascadeCall: "call",
    TierEvent: "tier_event",
    BootDetection: "boot",
}


class HistoryRecorder:
    def __init__(
        self,
        *,
        store_chat: bool | None = None,
        layer: BaseChannelLayer | None = None,
        use_default_layer: bool = True,
        max_queue: int = MAX_QUEUE,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.store_chat = settings.HISTORY_STORE_CHAT if store_chat is None else store_chat
        self._layer = layer
        self._use_default_layer = use_default_layer and layer is None
        self._queue: collections.deque[models.Model] = collections.deque()
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.dropped = 0
        self.written = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None
        self._stopping = False

    @property
    def pending(self) -> int:
        return len(self._queue)

    # -- the hot path: append and return ------------------------------------------------

    def record_probe(self, result: ProbeResult, kind: str | None = None) -> None:
        self._put(
            Probe(
                tier=result.tier,
                kind=kind or result.kind,
                ok=result.ok,
                latency_ms=result.latency_ms,
                error=result.error[:64],
                detail=(result.detail or (f"models: {', '.join(result.models)}" if result.models else ""))[
                    :300
                ],
            )
        )

    def record_call(
        self,
        *,
        platform: str,
        intent: str,
        result: CascadeResult,
        channel: str = "",
        user: str = "",
        text: str = "",
    ) -> None:
        self._put(
            CascadeCall(
                platform=platform[:16],
                channel=channel[:100],
                intent=intent[:50],
                source=result.source,
                latency_ms=result.latency_ms,
                errors=dict(result.errors),
                timed_out=result.timed_out,
                user=user[:100] if self.store_chat else "",
                text=text if self.store_chat else "",
            )
        )

    def record_tier_event(self, tier: str, state: str, error: str = "", detail: str = "") -> None:
        self._put(TierEvent(tier=tier, state=state, error=error[:64], detail=detail[:300]))

    def record_boot(
        self,
        *,
        mode: str,
        found: bool,
        endpoint: str,
        model: str = "",
        latency_ms: float | None = None,
        error: str = "",
        process: str = "",
    ) -> None:
        self._put(
            BootDetection(
                mode=mode,
                found=found,
                endpoint=endpoint[:300],
                model=model[:200],
                latency_ms=latency_ms,
                error=error[:64],
                process=process[:32],
            )
        )

    def _put(self, row: models.Model) -> None:
        if len(self._queue) >= self.max_queue:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("history queue full: %d rows dropped so far", self.dropped)
            return
        self._queue.append(row)
        if self._wake is not None and len(self._queue) >= self.batch_size:
            self._wake.set()

    # -- the writer -------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="llm-history")

    async def stop(self) -> None:
        if self._task is not None and self._wake is not None:
            # Stopped by a flag, not by cancel(): on Python 3.11 a cancellation that lands
            # as the writer's timeout fires is swallowed by asyncio.timeout, and the writer
            # (and the process waiting for it) would never stop.
            self._stopping = True
            self._wake.set()
            await self._task
            self._task = None
            self._wake = None
        await self.flush()

    async def flush(self) -> None:
        """Write everything queued so far (tests and shutdown wait for it)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
                await self._write(batch)

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_EVERY):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # never let the writer die: the next batch may work
                log.exception("history writer failed")

    async def _write(self, batch: list[models.Model]) -> None:
        try:
            saved = await sync_to_async(_save, thread_sensitive=True)(batch)
        except Exception as exc:
            # A locked or missing database must not take the bot down: lose the batch, say so.
            self.dropped += len(batch)
            log.warning("history: %d rows not saved (%s: %s)", len(batch), type(exc).__name__, exc)
            return
        self.written += len(saved)
        await self._push(saved)

    async def _push(self, rows: list[dict[str, Any]]) -> None:
        layer = self._layer
        if layer is None and self._use_default_layer:
            try:
                layer = get_channel_layer()
            except Exception:
                layer = None
        if layer is None or not rows:
            return
        # One message per batch: under a burst of chat, per-row messages would cost the
        # event loop as much as the chat itself and overflow a slow page's channel.
        try:
            await layer.group_send(DASHBOARD_GROUP, {"type": "history.batch", "rows": rows})
        except Exception as exc:
            log.debug("history: dashboard push failed (%s)", type(exc).__name__)


def _save(batch: list[models.Model]) -> list[dict[str, Any]]:
    """Save the batch; return its rows as the dashboard's {kind, data}, oldest first."""
    by_model: dict[type[models.Model], list[models.Model]] = {}
    for row in batch:
        by_model.setdefault(type(row), []).append(row)
    saved: list[models.Model] = []
    for model, rows in by_model.items():
        saved.extend(model._default_manager.bulk_create(rows))
    # This thread writes for as long as the bot runs: with DEBUG on, Django would keep
    # the text of its last 9,000 queries (megabytes of bulk inserts) in memory.
    reset_queries()
    saved.sort(key=lambda row: row.created)  # type: ignore[attr-defined]
    # Serialised here, in the writer's thread, rather than on the event loop.
    return [{"kind": _KINDS[type(row)], "data": as_data(row)} for row in saved]


def as_data(row: models.Model) -> dict[str, Any]:
    """A history row as JSON-safe data for the dashboard (times as ISO strings)."""
    data: dict[str, Any] = {}
    for field in row._meta.concrete_fields:
        value = getattr(row, field.attname)
        data[field.attname] = value.isoformat() if hasattr(value, "isoformat") else value
    return data
