"""The chat worker: channels' own Worker, reading the workers' channel."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.layers import get_channel_layer
from channels.routing import ChannelNameRouter
from channels.worker import Worker

from chatbridge.consumers import ChatWorkerConsumer
from chatbridge.events import WORKER_CHANNEL

# Messages read from the layer but not yet picked up by the consumer.
MAX_QUEUED = 64


class ChatWorker(Worker):
    async def handle(self) -> None:
        # channels' Worker waits on its listeners without cancelling them when it is
        # cancelled itself: they would go on reading the layer after the worker stopped.
        listeners = [asyncio.create_task(self.listener(channel)) for channel in self.channels]
        try:
            await asyncio.gather(*listeners)
        finally:
            instances = [details["future"] for details in self.application_instances.values()]
            for task in [*listeners, *instances]:
                task.cancel()
            self.application_instances.clear()
            # Wait for them: a consumer still reading its own channel would hold a layer
            # connection open past the worker's end.
            await asyncio.gather(*listeners, *instances, return_exceptions=True)

    async def listener(self, channel: str) -> None:
        while True:
            message = await self.channel_layer.receive(channel)
            if not message.get("type"):
                raise ValueError("Worker received message with no type.")
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
