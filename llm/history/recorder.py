"""Availability history, written off the hot path.

`record_*()` only appends to an in-memory queue and returns: chat never waits on the
database. A background task writes the rows in batches from a thread, then pushes
each batch to the dashboard's channel-layer group as one message. Call these from the
event loop's thread.

What the queue keeps when the database cannot keep up or is gone:
- Probes, calls and usage rows: up to `max_queue`; past that new ones are dropped
  and counted (under a flood of chat, memory stays flat and the bot keeps answering).
- State changes (TierEvent) and boot detections: never dropped for queue space (a
  lost "up" would leave an incident ongoing forever). They are rare, bounded by the
  number of state changes, and wait in a queue of their own. Only past
  `max_state_queue` (50,000 rows, ~20 MB: a tier flapping for days of database
  outage) the oldest change of a tier that has a newer one queued is coalesced
  into it: the dashboard then sees two adjacent incidents as one, and every tier's
  latest state still arrives.
- Database unreachable: the batch goes back to the front of the queue (still
  bounded) and the writer retries with capped backoff; one warning per outage.
- One bad row (a value the database refuses): the batch is retried row by row, so
  only that row is lost, logged once per kind of row and error.
- SQLite file deleted or replaced under the process: one error line, then nothing
  is written (a new connection would silently create an empty database).

Each batch also adds its probes and calls to the hourly and daily roll-ups
(llm.history.rollups) and turns its state changes into incidents and absences
(llm.history.periods), in the batch's own transaction.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings
from django.db import models, reset_queries, transaction

from llm.cascade.results import CascadeResult, ProbeResult
from llm.history import periods, rollups
from llm.models import BootDetection, CascadeCall, Probe, TierEvent, Usage, WrittenBy
from serdabot.database import DatabaseFile, close_connection, database_label, is_unreachable, ping
from serdabot.outage import Outage, describe
from serdabot.process import identity
from serdabot.redact import redact

log = logging.getLogger("llm.history")

DASHBOARD_GROUP = "llm.dashboard"
MAX_QUEUE = 2_000
MAX_STATE_QUEUE = 50_000
BATCH_SIZE = 200
# How long a row may wait in memory before the writer saves it anyway.
FLUSH_EVERY = 0.5
# Retries while the database is unreachable: the cap bounds how long after it returns
# the history catches up.
RETRY_FIRST = 0.5
RETRY_CAP = 10.0

_KINDS: dict[type[models.Model], str] = {
    Probe: "probe",
    CascadeCall: "call",
    TierEvent: "tier_event",
    BootDetection: "boot",
    Usage: "usage",
}
_STATE_ROWS = (TierEvent, BootDetection)
# Lone surrogates (a JSON "\ud800" from chat or a server) and NUL: neither SQLite nor
# PostgreSQL stores them, and either would cost the row.
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def storable(text: str) -> str:
    """`text` without what no database stores: NUL dropped, lone surrogates replaced by U+FFFD."""
    if not _UNSTORABLE.search(text):
        return text
    text = text.replace("\x00", "")
    # Through UTF-16, a pair split in two code points becomes one again.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


class HistoryRecorder:
    def __init__(
        self,
        *,
        store_chat: bool | None = None,
        layer: BaseChannelLayer | None = None,
        use_default_layer: bool = True,
        max_queue: int = MAX_QUEUE,
        max_state_queue: int = MAX_STATE_QUEUE,
        batch_size: int = BATCH_SIZE,
        retry_cap: float = RETRY_CAP,
        database_file: DatabaseFile | None = None,
    ) -> None:
        self.store_chat = settings.HISTORY_STORE_CHAT if store_chat is None else store_chat
        self._layer = layer
        self._use_default_layer = use_default_layer and layer is None
        self._queue: collections.deque[WrittenBy] = collections.deque()
        self._states: collections.deque[WrittenBy] = collections.deque()
        # Queued state rows per tier (boots count as one "tier"): what coalescing looks at.
        self._state_counts: collections.Counter[str] = collections.Counter()
        self.max_queue = max_queue
        self.max_state_queue = max_state_queue
        self.batch_size = batch_size
        self.retry_cap = retry_cap
        self.dropped = 0  # rows lost, for whatever reason
        self.rejected = 0  # of which: refused by the database (bad rows)
        self.coalesced = 0  # state changes merged into a newer one of their tier
        self.written = 0
        self._rejections_logged: set[tuple[str, str]] = set()
        self._outage: Outage | None = None
        self._retry_in = 0.0
        # The SQLite file to watch; by default the database's own, found at start().
        self._file = database_file
        self._file_gone = ""  # "deleted" or "replaced" once noticed
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None
        self._stopping = False

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._states)

    @property
    def outage(self) -> Outage:
        # Named when first needed: the test runner renames the database after settings load.
        if self._outage is None:
            self._outage = Outage("history", database_label(), log, first=RETRY_FIRST, cap=self.retry_cap)
        return self._outage

    def database_unreachable(self, exc: BaseException) -> None:
        """The caller found the database down and said so: wait before the first write, quietly."""
        self._retry_in = self.outage.failed(exc, announced=True)

    # -- the hot path: append and return ------------------------------------------------

    def record_probe(self, result: ProbeResult, kind: str | None = None) -> None:
        self._put(
            Probe(
                tier=result.tier,
                kind=kind or result.kind,
                ok=result.ok,
                latency_ms=result.latency_ms,
                # Redacted before the cut: a key cut in two would no longer be recognised.
                error=storable(redact(result.error))[:64],
                detail=storable(
                    redact(result.detail or (f"models: {', '.join(result.models)}" if result.models else ""))
                )[:300],
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
                platform=storable(platform)[:16],
                channel=storable(channel)[:100],
                intent=storable(intent)[:50],
                source=result.source,
                latency_ms=result.latency_ms,
                errors={tier: storable(redact(error)) for tier, error in result.errors.items()},
                timed_out=result.timed_out,
                fallback_intent=storable(result.fallback_intent(intent) or "")[:50],
                first_token_ms=result.first_token_ms,
                tiers=[
                    {**attempt.as_dict(), "error": storable(redact(attempt.error))[:64]}
                    for attempt in result.tiers
                ],
                user=storable(user)[:100] if self.store_chat else "",
                text=storable(text) if self.store_chat else "",
            )
        )

    def record_tier_event(
        self, tier: str, state: str, error: str = "", detail: str = "", *, role: str | None = None
    ) -> None:
        """`role` files the change under another process role than this one's (see LLMService)."""
        self._put(
            TierEvent(
                tier=tier,
                state=state,
                error=storable(redact(error))[:64],
                detail=storable(redact(detail))[:300],
            ),
            role=role,
        )

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
                endpoint=storable(redact(endpoint))[:300],  # http://user:password@host/ happens
                model=storable(model)[:200],
                latency_ms=latency_ms,
                error=storable(redact(error))[:64],
                process=process[:32],
            )
        )

    def record_usage(
        self, *, tier: str, model: str, prompt_tokens: int, completion_tokens: int, reported: bool = True
    ) -> None:
        """One request sent to a paid tier, with the tokens it cost (the daily budget's rows)."""
        self._put(
            Usage(
                tier=tier,
                model=storable(model)[:200],
                prompt_tokens=max(prompt_tokens, 0),
                completion_tokens=max(completion_tokens, 0),
                reported=reported,
            )
        )

    def _put(self, row: WrittenBy, *, role: str | None = None) -> None:
        row.host, row.pid, row.role = identity()
        if role is not None:
            row.role = role
        if isinstance(row, _STATE_ROWS):
            self._put_state(row)
        elif len(self._queue) >= self.max_queue:
            self._drop(1)
            return
        else:
            self._queue.append(row)
        if self._wake is not None and self.pending >= self.batch_size and not self.outage_ongoing:
            self._wake.set()

    @property
    def outage_ongoing(self) -> bool:
        return self._outage is not None and self._outage.ongoing

    def _drop(self, count: int) -> None:
        before = self.dropped
        self.dropped += count
        if before == 0 or before // 1000 != self.dropped // 1000:
            log.warning("history queue full: %d rows dropped so far", self.dropped)

    def _put_state(self, row: WrittenBy, *, front: bool = False) -> None:
        if front:
            self._states.appendleft(row)
        else:
            self._states.append(row)
        self._state_counts[_state_key(row)] += 1
        while len(self._states) > self.max_state_queue and self._coalesce_oldest():
            pass

    def _coalesce_oldest(self) -> bool:
        """Drop the oldest state row that a newer one of its tier supersedes; False if none does.

        With none (each tier queued once) the queue is as long as there are tiers: bounded.
        """
        for index, row in enumerate(self._states):
            key = _state_key(row)
            if self._state_counts[key] > 1:
                del self._states[index]
                self._state_counts[key] -= 1
                self.coalesced += 1
                if self.coalesced == 1 or self.coalesced % 1000 == 0:
                    log.warning(
                        "history: %d state changes queued; %d coalesced into newer ones so far",
                        len(self._states),
                        self.coalesced,
                    )
                return True
        return False

    def _take(self) -> list[WrittenBy]:
        batch: list[WrittenBy] = []
        while self._states and len(batch) < self.batch_size:
            row = self._states.popleft()
            self._state_counts[_state_key(row)] -= 1
            batch.append(row)
        while self._queue and len(batch) < self.batch_size:
            batch.append(self._queue.popleft())
        return batch

    def _requeue(self, rows: list[WrittenBy]) -> None:
        """Put unsaved rows back at the front, in their order; the ordinary queue stays bounded."""
        for row in reversed(rows):
            if isinstance(row, _STATE_ROWS):
                self._put_state(row, front=True)
            else:
                self._queue.appendleft(row)
        # Past the bound, the newest ordinary rows go, as when the queue is full.
        excess = len(self._queue) - self.max_queue
        for _ in range(max(excess, 0)):
            self._queue.pop()
        if excess > 0:
            self._drop(excess)

    # -- the writer -------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._wake = asyncio.Event()
            if self._file is None:
                self._file = DatabaseFile.of()
            if self._file is not None:
                self._file.remember()
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
        # One last try, not a wait: a process stopping must not hang on a dead database.
        if not await self.flush() and self.pending:
            left = self.pending
            self._discard_queued()
            self.dropped += left
            log.warning("history: %d rows not saved: %s unreachable at shutdown", left, self.outage.what)

    async def flush(self) -> bool:
        """Write everything queued so far (tests and shutdown wait for it).

        False when rows could not be written (the database is unreachable: they stay
        queued; or its file is gone: they are dropped).
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            self._watch_file()
            if self._file_gone:
                self.dropped += self.pending  # said once, by _watch_file
                self._discard_queued()
                return False
            while self.pending:
                if not await self._write(self._take()):
                    return False
            return True

    def _discard_queued(self) -> None:
        self._queue.clear()
        self._states.clear()
        self._state_counts.clear()

    def _watch_file(self) -> None:
        if self._file is None or self._file_gone:
            return
        problem = self._file.problem()
        if problem:
            self._file_gone = problem
            log.error(
                "the SQLite database file %s was %s while the bot runs: history is not being saved; "
                "restart the bot",
                self._file.path,
                problem,
            )

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            delay = self._retry_in if self.outage_ongoing else FLUSH_EVERY
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                break  # stop() writes what is left
            try:
                await self.flush()
            except Exception:  # never let the writer die: the next batch may work
                log.exception("history writer failed")

    async def _write(self, batch: list[WrittenBy]) -> bool:
        """Save one batch; False (and the rows back in the queue) when the database is unreachable."""
        stored = await sync_to_async(_store, thread_sensitive=True)(batch)
        for row, exc in stored.refused:
            self.rejected += 1
            self.dropped += 1
            kind = (_KINDS[type(row)], type(exc).__name__)
            if kind not in self._rejections_logged:
                self._rejections_logged.add(kind)
                log.warning(
                    "history: a %s row was refused and dropped (%s); the rest of its batch was saved",
                    kind[0],
                    describe(exc),
                )
        if stored.saved:
            self.written += len(stored.saved)
            await self._push(stored.saved)
        if stored.outage is not None:
            self._requeue(stored.unsaved)
            self._retry_in = self.outage.failed(stored.outage)
            return False
        if self._outage is not None:
            self._outage.recovered()
        return True

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
            # Sent once (no retry, unlike change notices): a send whose answer was lost may have
            # reached Redis, and a retried batch would show its rows twice on open pages.
            await layer.group_send(DASHBOARD_GROUP, {"type": "history.batch", "rows": rows})
        except Exception as exc:
            log.debug("history: dashboard push failed (%s)", type(exc).__name__)


def _state_key(row: models.Model) -> str:
    return f"tier:{row.tier}" if isinstance(row, TierEvent) else "boot"


@dataclass
class _Stored:
    saved: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[WrittenBy, Exception]] = field(default_factory=list)
    # Rows not tried because the database went away, and why it did.
    unsaved: list[WrittenBy] = field(default_factory=list)
    outage: Exception | None = None


def _store(batch: list[WrittenBy]) -> _Stored:
    """Save the batch in the writer's thread; row by row if it fails while the database answers."""
    try:
        return _Stored(saved=_save(batch))
    except Exception as exc:
        failure = exc
    _forget_keys(batch)
    if _database_down(failure):
        return _Stored(unsaved=batch, outage=failure)
    stored = _Stored()
    for index, row in enumerate(batch):
        try:
            stored.saved.extend(_save([row]))
        except Exception as exc:
            _forget_keys([row])
            if _database_down(exc):
                stored.unsaved, stored.outage = batch[index:], exc
                break
            stored.refused.append((row, exc))
    stored.saved.sort(key=lambda data: str(data["data"]["created"]))
    return stored


def _database_down(exc: Exception) -> bool:
    """Whether `exc` came from an unreachable database rather than from a row it refused."""
    if not is_unreachable(exc):
        return False  # a data or integrity error, a value the driver cannot encode: that row's fault
    close_connection()  # a broken connection is never reused: the next try reconnects
    if "database is locked" in str(exc):
        return True  # SQLite: another writer held the lock past the busy timeout; wait, do not drop
    try:
        ping()
    except Exception:
        return True
    return False  # it answers: something in the batch made it fail


def _forget_keys(rows: list[WrittenBy]) -> None:
    # bulk_create set the primary keys before the transaction was rolled back.
    for row in rows:
        row.pk = None
        row._state.adding = True


def _save(batch: list[WrittenBy]) -> list[dict[str, Any]]:
    """Save the batch, all or nothing; return its rows as the dashboard's {kind, data}, oldest first."""
    by_model: dict[type[models.Model], list[WrittenBy]] = {}
    for row in batch:
        by_model.setdefault(type(row), []).append(row)
    saved: list[models.Model] = []
    try:
        # All or nothing: a batch retried row by row must not write its first half twice.
        with transaction.atomic():
            for model, rows in by_model.items():
                saved.extend(model._default_manager.bulk_create(rows))
            # In the same transaction: roll-ups and incidents never count a row that was not saved.
            rollups.apply(rollups.Tallies().rows_of(batch))
            periods.apply(by_model.get(TierEvent, []))  # type: ignore[arg-type]
    finally:
        # This thread writes for as long as the bot runs: with DEBUG on, Django would keep
        # the text of its last 9,000 queries (megabytes of bulk inserts) in memory.
        reset_queries()
    saved.sort(key=lambda row: row.created)  # type: ignore[attr-defined]
    # Serialised here, in the writer's thread, rather than on the event loop.
    return [{"kind": _KINDS[type(row)], "data": as_data(row)} for row in saved]


def as_data(row: models.Model) -> dict[str, Any]:
    """A history row as JSON-safe data for the dashboard (times as ISO strings)."""
    data: dict[str, Any] = {}
    for field_ in row._meta.concrete_fields:
        value = getattr(row, field_.attname)
        data[field_.attname] = value.isoformat() if hasattr(value, "isoformat") else value
    return data
