"""The console adapter: type lines as a chat user, read the replies."""

from __future__ import annotations

import asyncio
import uuid

from channels.layers import BaseChannelLayer

from chatbridge.adapters.base import LayerClient
from chatbridge.events import ChatEvent, Reply


class ConsoleAdapter:
    platform = "console"

    def __init__(
        self,
        user: str = "viewer",
        layer: BaseChannelLayer | None = None,
        timeout: float = 60.0,
        *,
        moderator: bool = False,
    ) -> None:
        self.user = user
        # `chat --moderator`: the lines come from a moderator, who may use `!serdabot …`.
        self.moderator = moderator
        self.client = LayerClient(layer)
        # Longer than any cascade deadline: the worker always answers an acked event.
        self.timeout = timeout

    async def say(self, text: str) -> Reply | None:
        event = ChatEvent(
            platform=self.platform,
            channel="console",
            user=self.user,
            text=text,
            message_id=uuid.uuid4().hex,
            is_moderator=self.moderator,
        )
        await self.client.submit(event, ack=True)
        while True:
            event_id, reply = await asyncio.wait_for(self.client.receive(), self.timeout)
            if event_id == event.message_id:  # replies to earlier, timed-out lines are dropped
                return reply
