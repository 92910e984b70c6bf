"""At most one answer per chat message, however many workers read the layer.

channels_redis can hand one message to two readers of the same channel (its
in-flight backup queue is put back by the next reader's receive), and Twitch's
EventSub may deliver a notification more than once. So a worker claims a message
id before answering it: a Redis SET NX shared by every process when REDIS_URL is
set, a bounded set of recent ids in this process otherwise.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

from django.conf import settings

from chatbridge.recent import Recent

KEY_PREFIX = "serdabot:claim:"
CLAIM_SECONDS = 3600  # long after any redelivery could happen
LOCAL_MEMORY = 5_000  # recent ids remembered by one process: redeliveries come within seconds


class Claims(Protocol):
    async def claim(self, key: str) -> bool: ...


class LocalClaims:
    def __init__(self, size: int = LOCAL_MEMORY) -> None:
        self.size = size
        # Bounded by count alone (no clock): the oldest ids go first.
        self._seen = Recent(time.monotonic, keep_for=math.inf, at_most=size, renew=False)

    async def claim(self, key: str) -> bool:
        return not self._seen.note(key)


class RedisClaims:
    def __init__(self, url: str) -> None:
        import redis.asyncio

        self.client = redis.asyncio.Redis.from_url(url)

    async def claim(self, key: str) -> bool:
        return bool(await self.client.set(f"{KEY_PREFIX}{key}", 1, nx=True, ex=CLAIM_SECONDS))


def claims_for_settings() -> Claims:
    return RedisClaims(settings.REDIS_URL) if settings.REDIS_URL else LocalClaims()
