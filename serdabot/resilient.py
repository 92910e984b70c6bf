"""Websocket consumers whose layer reads outlive the layer (a Redis restart).

channels sets `channel_receive` in the consumer's `__call__` and hands it to its dispatch
loop, which ends the consumer at the first exception: a Redis restart would close every
open page with "Exception inside application". This mixin keeps channels' own receive as
`_layer_receive` and hands the loop the subclass's `_receive_from_layer`, which retries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]


class OutlivesTheLayer:
    _layer_receive: Receive

    @property
    def channel_receive(self) -> Receive:
        return self._receive_from_layer

    @channel_receive.setter
    def channel_receive(self, receive: Receive) -> None:
        self._layer_receive = receive

    async def _receive_from_layer(self) -> dict[str, Any]:
        """channels' `_layer_receive`, retried through the layer's outages (subclasses say how)."""
        raise NotImplementedError
