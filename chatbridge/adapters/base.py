"""What every adapter shares: handing events to the workers and getting replies back."""

from __future__ import annotations

import logging
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer, get_channel_layer

from chatbridge.consumers import event_message
from chatbridge.events import WORKER_CHANNEL, ChatEvent, Reply
from serdabot.outage import send_once_more

log = logging.getLogger("chatbridge.adapters")


class LayerClient:
    """An adapter's end of the channel layer: one reply channel per adapter."""

    def __init__(self, layer: BaseChannelLayer | None = None) -> None:
        resolved = layer if layer is not None else get_channel_layer()
        if resolved is None:
            raise RuntimeError("no channel layer configured (CHANNEL_LAYERS)")
        self.layer: BaseChannelLayer = resolved
        self.reply_channel = ""
        self.dropped = 0

    async def open(self) -> str:
        if not self.reply_channel:
            # The layer's default prefix, on purpose: channels_redis serialises reads of all of a
            # process's own channels behind one lock but pops only the reader's prefix, so a
            # custom prefix next to the worker's consumer channel waits out a 5 s Redis timeout.
            self.reply_channel = await self.layer.new_channel()
        return self.reply_channel

    async def submit(self, event: ChatEvent, *, ack: bool = False) -> bool:
        """Hand one event to the workers. False when the layer is full (the event is dropped)."""
        await self.open()
        try:
            await send_once_more(
                self.layer.send, WORKER_CHANNEL, event_message(event, self.reply_channel, ack=ack)
            )
        except ChannelFull:
            self.dropped += 1
            log.warning("channel layer full: dropped a chat event from %s/%s", event.platform, event.channel)
            return False
        return True

    async def receive(self) -> tuple[str, Reply | None]:
        """Wait for the next reply: (event id, reply or None when the worker had nothing to say)."""
        await self.open()
        message: dict[str, Any] = await self.layer.receive(self.reply_channel)
        reply = Reply.from_message(message["reply"]) if message.get("reply") else None
        return str(message.get("event_id", "")), reply
