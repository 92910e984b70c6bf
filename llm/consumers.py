"""The dashboard's websocket: history rows pushed live to open pages."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from llm.history import DASHBOARD_GROUP


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    """Forwards `history.batch` messages to a staff member's browser, one {kind, data}
    frame per row."""

    joined = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_active or not user.is_staff:
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(DASHBOARD_GROUP, self.channel_name)
        self.joined = True
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.joined:
            await self.channel_layer.group_discard(DASHBOARD_GROUP, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The page only listens; anything it sends is ignored.
        return

    async def history_batch(self, message: dict[str, Any]) -> None:
        for row in message.get("rows", []):
            await self.send_json({"kind": row.get("kind", ""), "data": row.get("data", {})})
