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

from serdabot.groups import Membership, layer_name
from serdabot.outage import Outage, connection_errors, describe, send_once_more

log = logging.getLogger("serdabot.broadcast")

GROUP = "serdabot.changes"


def notify_changed(what: str) -> None:
    """Called from sync code after a commit. Never raises: a missed notice only delays a refresh."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(send_once_more)(layer.group_send, GROUP, {"type": "config.changed", "what": what})
    except Exception as exc:
        log.warning("could not broadcast a %s change: %s", what, type(exc).__name__)


async def listen(refreshers: Mapping[str, Callable[[], None]], layer: BaseChannelLayer | None = None) -> None:
    """Run the matching refresher (in a thread: they read the database) for each notice.

    Runs for as long as the process does; it ends only when cancelled. A failed receive is
    retried with capped backoff, the group is joined again as soon as the layer answers and
    refreshed well within its expiry, and every refresher runs once after an outage: a
    change saved while Redis was down was never announced.
    """
    layer = layer or get_channel_layer()
    if layer is None:
        return
    # The layer's default prefix, as for LayerClient: channels_redis reads all of a
    # process's own channels behind one lock, and a second prefix stalls the others.
    channel = await layer.new_channel()
    # One refresh at a time: the catch-up after an outage runs in the membership's task,
    # alongside the notices this loop hears.
    refreshing = asyncio.Lock()
    errors = connection_errors()

    async def refresh(what: str) -> None:
        function = refreshers.get(what)
        if function is None:
            return
        async with refreshing:
            try:
                await sync_to_async(function, thread_sensitive=False)()
            except errors as exc:
                log.warning("refreshing %s after a change failed: %s", what, describe(exc))
            except Exception:
                log.exception("refreshing %s after a change failed", what)

    async def catch_up() -> None:
        for what in refreshers:
            await refresh(what)

    outage = Outage("change listener", layer_name(layer), log)
    membership = Membership(layer, GROUP, channel, outage, on_back=catch_up)
    await membership.join()
    membership.start()
    misread = False  # a bug, not an outage: one traceback until a receive works again
    try:
        while True:
            try:
                message = await layer.receive(channel)
            except errors as exc:
                await asyncio.sleep(membership.lost(exc))
                continue
            except Exception:
                if not misread:
                    log.exception("change listener: receiving a notice failed")
                misread = True
                await asyncio.sleep(outage.cap)
                continue
            misread = False
            await refresh(str(message.get("what", "")))
    finally:
        await membership.stop()
