"""Channel-layer consumers: the chat worker and the web chat websocket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from channels.consumer import AsyncConsumer
from channels.exceptions import ChannelFull, StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings

from chatbridge import gate, phrases, runtime
from chatbridge.channel_settings import settings_cache
from chatbridge.claims import claims_for_settings
from chatbridge.commands import Command
from chatbridge.events import WORKER_CHANNEL, ChatEvent, Reply, reply_json
from chatbridge.handler import Handler
from chatbridge.sanitize import format_reply, limit_for
from fallbacks.services import warm as fallbacks_warm
from serdabot.outage import Outage, connection_errors, read_through, send_once_more
from serdabot.resilient import OutlivesTheLayer
from serdabot.tasks import cancel_and_wait

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


class Answering:
    """Whether this process's consumers start new answers: not once a stopping worker's grace
    is over (ChatWorker.drain). Commands still queued are then left to the adapters' guard,
    rather than started while the LLM clients and the layer close under them."""

    on = True


def stop_answering() -> None:
    Answering.on = False


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
        if not Answering.on:
            self._slots.release()
            return
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


_web_outage = Outage("web chat", "the channel layer", log)


class WebChatConsumer(OutlivesTheLayer, AsyncJsonWebsocketConsumer):
    """The web chat: a staff member talks to the bot through the same layer and handler.

    Guarded as the adapters guard chat: a line the layer refuses (Redis down) is answered
    at once from the phrases, one no worker answers within the cascade's deadline plus a
    margin is answered then, and a worker's reply that comes after is dropped. A Redis
    restart does not close the page: its reads are retried until the layer is back.
    """

    guard_after: float | None = None  # seconds; the cascade's deadline + GUARD_MARGIN when None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting: dict[str, asyncio.TimerHandle] = {}
        self._guards: set[asyncio.Task[None]] = set()

    async def _receive_from_layer(self) -> dict[str, Any]:
        # A closed page cancels the read, which redis-py may turn into its own TimeoutError.
        return await read_through(self._layer_receive, _web_outage, CONNECTION_ERRORS)

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_active or not user.is_staff:
            await self.close(code=4403)
            return
        # The web process hears no change notices: the phrases its guard answers with are
        # read when a page opens (the built-in ones answer if the database is away).
        with contextlib.suppress(Exception):
            await sync_to_async(fallbacks_warm)()
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for timer in self._waiting.values():
            timer.cancel()
        self._waiting.clear()
        await cancel_and_wait(self._guards)

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
        loop = asyncio.get_running_loop()
        self._waiting[event.message_id] = loop.call_later(self._guard_after(), self._expired, event)
        try:
            await send_once_more(
                self.channel_layer.send, WORKER_CHANNEL, event_message(event, self.channel_name, ack=True)
            )
        except Exception as exc:
            _web_outage.failed(exc)
            await self._answer_here(event)

    async def chat_reply(self, message: dict[str, Any]) -> None:
        timer = self._waiting.pop(str(message.get("event_id", "")), None)
        if timer is None:
            return  # answered here already: one reply per line
        timer.cancel()
        reply = Reply.from_message(message["reply"]) if message.get("reply") else None
        await self.send_json({"event_id": message.get("event_id", ""), **reply_json(reply)})

    def _guard_after(self) -> float:
        if self.guard_after is None:
            from chatbridge.adapters.relay import GUARD_MARGIN, guard_defaults  # see web_fallback

            self.guard_after = guard_defaults()[0] + GUARD_MARGIN
        return self.guard_after

    def _expired(self, event: ChatEvent) -> None:
        task = asyncio.create_task(self._answer_here(event))
        self._guards.add(task)
        task.add_done_callback(self._guards.discard)

    async def _answer_here(self, event: ChatEvent) -> None:
        """The workers never answered (or could not be reached): a phrase from this process."""
        timer = self._waiting.pop(event.message_id, None)
        if timer is None:
            return
        timer.cancel()
        await self.send_json({"event_id": event.message_id, **reply_json(await web_fallback(event))})


async def web_fallback(event: ChatEvent) -> Reply | None:
    """What the adapters' guard would say to `event`; None for a line that is not a command."""
    # Imported here: the relay imports this module (through the adapters' layer client).
    from chatbridge.adapters.relay import guard_defaults, guard_intent
    from llm.cascade.switches import live_switches

    config = settings_cache.get(event.platform, event.channel)
    command = gate.decide(event, config, (settings.BOT_NAME,))
    if command is None:
        return None
    # The live switch when this process watches it (runbot does), else FALLBACK_MODE.
    mode = live_switches.fallback_mode(guard_defaults()[1])
    picked = phrases.pick(event, guard_intent(command), config, mode, command=command)
    return Reply(
        platform=event.platform,
        channel=event.channel,
        user=event.user,
        text=format_reply(event.user, picked.body, limit_for(event.platform)),
        source="fallback",
        intent=command.intent,
        latency_ms=0.0,
        reply_to=event.message_id,
        fallback_intent=picked.intent,
        command=command.name,
    )
