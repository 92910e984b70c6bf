"""Channel-layer consumers: the chat worker and the web chat websocket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from channels.consumer import AsyncConsumer
from channels.exceptions import ChannelFull, StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch

from chatbridge import runtime
from chatbridge.claims import claims_for_settings
from chatbridge.commands import Command
from chatbridge.events import WORKER_CHANNEL, ChatEvent, Reply, reply_json
from chatbridge.handler import Handler
from serdabot.outage import Outage, connection_errors

log = logging.getLogger("chatbridge.worker")
CONNECTION_ERRORS = connection_errors()
# Logged once per outage, not once per message: both fail together when Redis goes.
_claim_outage = Outage("chat worker claims", "Redis", log)
_reply_outage = Outage("chat worker replies", "the channel layer", log)

# Messages handled at once by one worker. Past this the worker stops reading the
# layer, so the backlog waits in the layer (bounded by its capacity), not in memory.
MAX_IN_FLIGHT = 256

# Every answer being written in this process, whichever consumer started it: a graceful
# shutdown waits for them (chatbridge.worker.ChatWorker.drain).
IN_FLIGHT: set[asyncio.Task[None]] = set()


async def send_once_more(
    send: Callable[[str, dict[str, Any]], Awaitable[None]], channel: str, data: dict[str, Any]
) -> None:
    """Send, and try once more on a connection error: after a Redis restart the pool's first
    connection is a dead one, and only the second try gets a fresh connection."""
    try:
        await send(channel, data)
    except CONNECTION_ERRORS:
        await send(channel, data)


async def wait_in_flight(until: float) -> int:
    """Wait for this process's answers in flight until the loop time `until`; how many are left."""
    loop = asyncio.get_running_loop()
    while IN_FLIGHT and loop.time() < until:
        await asyncio.wait(list(IN_FLIGHT), timeout=until - loop.time())
    return len(IN_FLIGHT)


def event_message(event: ChatEvent, reply_channel: str, *, ack: bool = False) -> dict[str, Any]:
    """The layer message an adapter sends to the workers for one chat event."""
    return {"type": "chat.event", "event": event.to_message(), "reply_channel": reply_channel, "ack": ack}


class ChatWorkerConsumer(AsyncConsumer):
    """Runs the handler for each chat event and sends the reply back to the adapter."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._claims = claims_for_settings()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # AsyncConsumer would also read a channel of this consumer's own, which nothing
        # ever sends to: a read that a Redis outage turns into a crash of the consumer
        # (and a traceback) while its answers are still being written.
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        with contextlib.suppress(StopConsumer):
            await await_many_dispatch([receive], self.dispatch)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # AsyncConsumer.dispatch hops to a thread before every message to close stale
        # database connections. The handler never touches the database (phrases are
        # cached, history is written by the recorder's own thread), and that hop would
        # cost more than handling an ordinary chat line.
        if message.get("type") != "chat.event":
            raise ValueError(f"No handler for message type {message.get('type')}")
        await self.chat_event(message)

    async def chat_event(self, message: dict[str, Any]) -> None:
        try:
            event = ChatEvent.from_message(message["event"])
            handler = runtime.current().handler
            command = handler.decide(event)
        except Exception:
            log.exception("malformed chat event")
            return
        if command is None:
            # Ordinary chat: decided without a task, the common case by far.
            if message.get("ack"):
                await self._send(message, event, None)
            return
        await self._slots.acquire()
        # One task per command: a slow model answer must not hold up the next line of chat.
        task = asyncio.create_task(self._answer(message, event, handler, command))
        self._tasks.add(task)
        IN_FLIGHT.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        IN_FLIGHT.discard(task)
        self._slots.release()

    async def _answer(
        self, message: dict[str, Any], event: ChatEvent, handler: Handler, command: Command
    ) -> None:
        # Claimed in the task, not in the dispatch loop: on Redis a claim is a round trip,
        # and the loop must go back to reading the layer meanwhile.
        if event.message_id and not await self._claim(f"{event.platform}:{event.message_id}"):
            log.info("message %s/%s already answered elsewhere: skipped", event.platform, event.message_id)
            return
        try:
            reply = await handler.answer(event, command)
        except Exception:
            # A phrase, not an empty reply: "nothing to say" would end the adapter's guard
            # and leave the viewer with no answer at all.
            log.exception("handler failed on a chat event")
            reply = handler.failed(event, command)
        await self._send(message, event, reply)

    async def _claim(self, key: str) -> bool:
        try:
            claimed = await self._claims.claim(key)
        except Exception as exc:
            # Redis gone: answer anyway. The adapter keeps the first reply per message and
            # drops any other, so a double claim costs a model call, never a second reply.
            _claim_outage.failed(exc)
            return True
        _claim_outage.recovered()
        return claimed

    async def _send(self, message: dict[str, Any], event: ChatEvent, reply: Reply | None) -> None:
        body = reply.to_message() if reply else None
        data = {"type": "chat.reply", "event_id": event.message_id, "reply": body}
        try:
            await send_once_more(self.channel_layer.send, message["reply_channel"], data)
        except ChannelFull:
            # The adapter is not reading its replies fast enough (or is gone): drop, don't pile up.
            log.warning("reply channel full: dropped a reply to %s/%s", event.platform, event.channel)
        except Exception as exc:
            # Redis gone: the adapter's guard answers that message itself.
            _reply_outage.failed(exc)
        else:
            _reply_outage.recovered()


class WebChatConsumer(AsyncJsonWebsocketConsumer):
    """The web chat: a staff member talks to the bot through the same layer and handler."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_active or not user.is_staff:
            await self.close(code=4403)
            return
        await self.accept()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        text = content.get("text") if isinstance(content, dict) else None
        if not isinstance(text, str) or not text.strip():
            await self.send_json({"error": 'send {"text": "..."}'})
            return
        user = self.scope["user"]
        event = ChatEvent(
            platform="web",
            channel="web",
            user=user.get_username(),
            text=text[:2000],
            message_id=uuid.uuid4().hex,
            is_moderator=True,
            user_id=str(user.pk),
        )
        await self.channel_layer.send(WORKER_CHANNEL, event_message(event, self.channel_name, ack=True))

    async def chat_reply(self, message: dict[str, Any]) -> None:
        reply = Reply.from_message(message["reply"]) if message.get("reply") else None
        await self.send_json({"event_id": message.get("event_id", ""), **reply_json(reply)})
