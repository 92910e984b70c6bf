"""The chat worker: channels' own Worker, reading the workers' channel.

Its receive loop outlives the layer: a Redis outage (or Redis refusing at start) is
logged once, retried with capped backoff, and reading resumes by itself within
seconds of Redis returning. Only cancellation stops it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.layers import get_channel_layer
from channels.routing import ChannelNameRouter
from channels.worker import Worker

from chatbridge.consumers import IN_FLIGHT, Answering, ChatWorkerConsumer, stop_answering, wait_in_flight
from chatbridge.events import WORKER_CHANNEL
from serdabot.outage import Outage, being_cancelled, connection_errors
from serdabot.tasks import cancel_and_wait, finish_shielded

log = logging.getLogger("chatbridge.worker")

# How long a stopping worker waits for its listeners to notice.
LISTENER_STOP = 2.0
# Messages read from the layer but not yet picked up by the consumer.
MAX_QUEUED = 64


class ChatWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listeners: list[asyncio.Task[None]] = []
        self._reading = asyncio.Event()
        self._reading.set()

    async def drain(self, until: float) -> int:
        """Stop reading the layer, then let the answers in flight finish until the loop time
        `until` (their replies go out as usual). The number still unfinished: those are
        cancelled before this returns."""
        self._reading.clear()
        await self._stop_listeners()
        left = await wait_in_flight(until)
        # Past the grace, no answer starts (each cancelled one frees a slot a queued command
        # would take), and those running are cancelled here, while the LLM clients, the
        # recorder and the layer they use are still open: left to asyncio.run's teardown,
        # they would fail under closed clients and log a traceback after "Stopped.".
        stop_answering()
        loop = asyncio.get_running_loop()
        give_up = loop.time() + LISTENER_STOP
        while IN_FLIGHT and loop.time() < give_up:
            await cancel_and_wait(list(IN_FLIGHT), within=give_up - loop.time())
        return left

    async def _stop_listeners(self) -> None:
        # redis-py may turn the cancellation of a blocking read into an error of its own, or
        # lose it (serdabot/tasks.py): the listener checks `_reading` too, and is not waited
        # for forever.
        await cancel_and_wait(self._listeners, within=LISTENER_STOP)

    async def handle(self) -> None:
        # channels' Worker waits on its listeners without cancelling them when it is
        # cancelled itself: they would go on reading the layer after the worker stopped.
        Answering.on = True  # a worker started again in this process (tests) answers again
        listeners = self._listeners = [
            asyncio.create_task(self.listener(channel)) for channel in self.channels
        ]
        try:
            # Listeners end only when drain() cancels them. asyncio.wait, not gather: cancelled,
            # this worker goes straight to `finally`, which clears `_reading` (a listener whose
            # cancellation redis-py swallowed still ends at its next loop) and waits a bounded time.
            while True:
                done, _ = await asyncio.wait(listeners)
                if not self._reading.is_set():
                    break
                ended = [t.exception() if not t.cancelled() else "cancelled" for t in done]
                # Ended while still reading: a bug, never an outage. A deaf worker would leave
                # every message to the adapters' guard, so it is said and the loop starts again.
                log.error("chat worker: the layer listener stopped on its own (%r): started again", ended)
                await asyncio.sleep(1.0)
                listeners = self._listeners = [
                    asyncio.create_task(self.listener(channel)) for channel in self.channels
                ]
            # Drained: the consumers finish their answers until the caller cancels the worker.
            await asyncio.Event().wait()
        finally:
            self._reading.clear()
            instances = [details["future"] for details in self.application_instances.values()]
            self.application_instances.clear()
            # Wait for them: a consumer still reading its own channel would hold a layer
            # connection open past the worker's end. The worker's own cancellation may be
            # repeated (serdabot/tasks.py), and must not leave them running.
            await finish_shielded(
                cancel_and_wait([*listeners, *instances], within=LISTENER_STOP), within=LISTENER_STOP + 1
            )

    async def listener(self, channel: str) -> None:
        outage = Outage("chat worker", "the channel layer", log)
        errors = connection_errors()
        misread = False  # one traceback until a read works again, not one a second
        while self._reading.is_set():
            try:
                message = await self.channel_layer.receive(channel)
            except errors as exc:
                if being_cancelled() or not self._reading.is_set():
                    raise asyncio.CancelledError from exc
                await asyncio.sleep(outage.failed(exc))
                continue
            except Exception:
                if being_cancelled() or not self._reading.is_set():
                    raise asyncio.CancelledError from None
                # Not an outage (a message the layer could not decode, Redis refusing writes
                # with MISCONF or READONLY...): never the end of the worker.
                if not misread:
                    log.exception("chat worker: reading the layer failed; retrying every second")
                misread = True
                await asyncio.sleep(1.0)
                continue
            misread = False
            outage.recovered()
            if not isinstance(message, dict) or not message.get("type"):
                log.warning("chat worker: a layer message with no type was ignored")
                continue
            queue = self.get_or_create_application_instance(channel, {"type": "channel", "channel": channel})
            await queue.put(message)
            # Back-pressure: when the consumer is saturated, leave the backlog in the
            # layer (bounded by its capacity) instead of growing this queue forever.
            while queue.qsize() >= MAX_QUEUED:  # noqa: ASYNC110 - the queue is asgiref's, it has no event
                await asyncio.sleep(0.001)


def build_worker() -> ChatWorker:
    """A worker on the project's channel layer (the consumer replies through that same layer)."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured (CHANNEL_LAYERS)")
    application: Any = ChannelNameRouter({WORKER_CHANNEL: ChatWorkerConsumer.as_asgi()})
    return ChatWorker(application=application, channels=[WORKER_CHANNEL], channel_layer=layer)
