"""The dashboard's websocket: history rows pushed live to open pages."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from llm.history.recorder import DASHBOARD_GROUP
from serdabot.groups import Membership, layer_name
from serdabot.outage import Outage
from serdabot.resilient import OutlivesTheLayer

log = logging.getLogger("llm.consumers")

_outage: Outage | None = None


def shared_outage(layer: Any) -> Outage:
    """One for all of this process's dashboards: an outage is logged once, not once per open page."""
    global _outage
    if _outage is None:
        _outage = Outage("dashboards", layer_name(layer), log)
    return _outage


class DashboardConsumer(OutlivesTheLayer, AsyncJsonWebsocketConsumer):
    """Forwards `history.batch` messages to a staff member's browser, one {kind, data}
    frame per row.

    The group membership is kept for as long as the socket is open. While it cannot be
    (the layer is unreachable), the page is told with a {"kind": "status", "data":
    {"live": false}} frame, and {"live": true} once it is back, so that it never reads
    "Live" while deaf.
    """

    membership: Membership | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_active or not user.is_staff:
            await self.close(code=4403)
            return
        membership = self._membership()
        # Joined before `accept`, so the page misses no row pushed once it is open.
        joined = await membership.join()
        await self.accept()
        if not joined:
            await self._send_live(False)
        membership.start()

    async def disconnect(self, code: int) -> None:
        if self.membership is not None:
            await self.membership.stop()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The page only listens; anything it sends is ignored.
        return

    async def history_batch(self, message: dict[str, Any]) -> None:
        for row in message.get("rows", []):
            await self.send_json({"kind": row.get("kind", ""), "data": row.get("data", {})})

    async def _receive_from_layer(self) -> dict[str, Any]:
        membership = self._membership()
        while True:
            try:
                return await self._layer_receive()
            except membership.errors as exc:
                await asyncio.sleep(membership.lost(exc))

    def _membership(self) -> Membership:
        # Built on first use: the channel name exists only once __call__ has run, and the
        # layer receive may fail before `connect` does.
        if self.membership is None:
            self.membership = Membership(
                self.channel_layer,
                DASHBOARD_GROUP,
                self.channel_name,
                shared_outage(self.channel_layer),
                on_lost=lambda: self._send_live(False),
                on_back=lambda: self._send_live(True),
            )
        return self.membership

    async def _send_live(self, live: bool) -> None:
        await self.send_json({"kind": "status", "data": {"live": live}})
