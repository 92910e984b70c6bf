"""Tell every bot process that something editable changed (phrases, channel settings).

Each process caches what the hot path reads. The process that saved a change
refreshes its own cache directly; the others hear about it on this channel-layer
group (with REDIS_URL, across processes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer

log = logging.getLogger("serdabot.broadcast")

GROUP = "serdabot.changes"


def notify_changed(what: str) -> None:
    """Called from sync code after a commit. Never raises: a missed notice only delays a refresh."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(GROUP, {"type": "config.changed", "what": what})
    except Exception as exc:
        log.warning("could not broadcast a %s change: %s", what, type(exc).__name__)


async def listen(refreshers: Mapping[str, Callable[[], None]], layer: BaseChannelLayer | None = None) -> None:
    """Run the matching refresher (in a thread: they read the database) for each notice."""
    layer = layer or get_channel_layer()
    if layer is None:
        return
    # The layer's default prefix, as for LayerClient: channels_redis reads all of a
    # process's own channels behind one lock, and a second prefix stalls the others.
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    try:
        while True:
            message = await layer.receive(channel)
            refresh = refreshers.get(str(message.get("what", "")))
            if refresh is None:
                continue
            try:
                await sync_to_async(refresh, thread_sensitive=False)()
            except Exception:
                log.exception("refreshing %s after a change failed", message.get("what"))
    finally:
        await asyncio.shield(layer.group_discard(GROUP, channel))
