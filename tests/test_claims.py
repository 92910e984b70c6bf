from __future__ import annotations

import uuid

import pytest

from chatbridge.claims import LocalClaims, RedisClaims
from tests.services import redis_url


async def test_a_message_is_claimed_once() -> None:
    claims = LocalClaims()

    assert await claims.claim("twitch:abc")
    assert not await claims.claim("twitch:abc")
    assert await claims.claim("discord:abc")


async def test_local_claims_stay_bounded() -> None:
    claims = LocalClaims(size=3)
    for key in "abcd":
        assert await claims.claim(key)

    assert len(claims._seen) == 3
    assert await claims.claim("a")  # forgotten: the oldest went first
    assert not await claims.claim("d")


@pytest.mark.services
async def test_redis_claims_are_shared_between_clients() -> None:
    url = redis_url()
    first, second = RedisClaims(url), RedisClaims(url)
    key = f"twitch:{uuid.uuid4().hex}"

    assert await first.claim(key)
    assert not await second.claim(key)
    assert not await first.claim(key)
    await first.client.aclose()
    await second.client.aclose()
