"""The dashboard's websocket: a recorded probe reaches an open page; only staff may listen;
an open page keeps hearing rows past the group expiry and through a Redis restart, and is
told while it cannot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer
from django.contrib.auth.models import AnonymousUser, User
from django.db import connections
from django.test import Client

from llm.cascade.results import ProbeResult
from llm.dashboard.consumers import DashboardConsumer
from llm.history.recorder import DASHBOARD_GROUP, HistoryRecorder
from serdabot.asgi import application
from serdabot.redis_hosts import redis_host
from tests.faults import PrivateRedis

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def close_thread_connections() -> AsyncIterator[None]:
    yield
    # The recorder saves rows from asgiref's thread: close its connection there, or
    # PostgreSQL refuses to drop the test database while it is still open.
    await sync_to_async(connections.close_all)()


def staff_session_cookie() -> bytes:
    client = Client()
    client.force_login(User.objects.create_user("staff", password="x", is_staff=True))
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def staff_page_through_the_app() -> WebsocketCommunicator:
    """The whole ASGI application (origin check, session auth, routing), as a browser opens it."""
    cookie = await sync_to_async(staff_session_cookie)()
    page = WebsocketCommunicator(
        application,
        "/ws/dashboard/",
        headers=[(b"cookie", cookie), (b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000")],
    )
    assert (await page.connect())[0]
    return page


async def staff_page() -> WebsocketCommunicator:
    """The consumer alone, connected as a staff member."""
    user = await sync_to_async(User.objects.create_user)("staff", password="x", is_staff=True)
    page = WebsocketCommunicator(DashboardConsumer.as_asgi(), "/ws/dashboard/")
    page.scope["user"] = user
    assert (await page.connect())[0]
    return page


async def test_a_recorded_probe_reaches_a_staff_page() -> None:
    cookie = await sync_to_async(staff_session_cookie)()
    # The whole ASGI application: origin check, session auth, routing, consumer.
    page = WebsocketCommunicator(
        application,
        "/ws/dashboard/",
        # The Host a browser sends too: the Origin check compares the two.
        headers=[(b"cookie", cookie), (b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000")],
    )
    connected, _ = await page.connect()
    assert connected

    recorder = HistoryRecorder()
    recorder.record_probe(
        ProbeResult(
            tier="local",
            url="http://127.0.0.1:1/v1",
            ok=False,
            latency_ms=None,
            error="ConnectError",
            detail="connection refused",
        )
    )
    await recorder.flush()

    message = await page.receive_json_from(timeout=5)
    assert message["kind"] == "probe"
    data = message["data"]
    assert (data["tier"], data["ok"], data["error"], data["detail"]) == (
        "local",
        False,
        "ConnectError",
        "connection refused",
    )
    assert data["created"][:4].isdigit() and "T" in data["created"]
    await page.disconnect()


async def test_state_changes_are_pushed_too() -> None:
    page = await staff_page()

    recorder = HistoryRecorder()
    recorder.record_tier_event("openai", "down", "AuthenticationError")
    await recorder.flush()

    message = await page.receive_json_from(timeout=5)
    assert (message["kind"], message["data"]["state"], message["data"]["error"]) == (
        "tier_event",
        "down",
        "AuthenticationError",
    )
    await page.disconnect()


async def test_a_batch_of_rows_reaches_the_page_one_frame_per_row_in_order() -> None:
    page = await staff_page()

    recorder = HistoryRecorder()
    recorder.record_tier_event("local", "down", "ConnectError")
    recorder.record_tier_event("local", "up")
    await recorder.flush()

    frames = [await page.receive_json_from(timeout=5) for _ in range(2)]
    assert [(f["kind"], f["data"]["state"]) for f in frames] == [("tier_event", "down"), ("tier_event", "up")]
    assert await page.receive_nothing()
    await page.disconnect()


@pytest.mark.parametrize("who", ["anonymous", "not staff"])
async def test_it_refuses_anyone_but_staff(who: str) -> None:
    page = WebsocketCommunicator(DashboardConsumer.as_asgi(), "/ws/dashboard/")
    if who == "anonymous":
        page.scope["user"] = AnonymousUser()
    else:
        page.scope["user"] = await sync_to_async(User.objects.create_user)("viewer", password="x")

    connected, code = await page.connect()
    # Let the refused consumer finish, so no layer read is left pending at teardown.
    await page.disconnect()

    assert not connected and code == 4403


# -- an open page outlives the group expiry and the layer ------------------------------

ROW = {"kind": "tier_event", "data": {"tier": "local", "state": "up", "error": ""}}
PAUSED = {"kind": "status", "data": {"live": False}}
RESUMED = {"kind": "status", "data": {"live": True}}


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with PrivateRedis() as redis:
        yield redis


@pytest.fixture
async def redis_layer(settings: Any, private_redis: PrivateRedis) -> AsyncIterator[PrivateRedis]:
    """The web process's channel layer on a Redis of the test's own, killed and restarted at will."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_host(private_redis.url)]},
        }
    }
    yield private_redis
    await get_channel_layer().close_pools()


async def push(url: str, *rows: dict[str, Any]) -> None:
    """Rows as the history writer of another process pushes them, on a connection of its own."""
    sender = RedisChannelLayer(hosts=[redis_host(url)])
    await sender.group_send(DASHBOARD_GROUP, {"type": "history.batch", "rows": list(rows)})
    await sender.close_pools()


async def test_an_open_page_still_hears_rows_after_the_group_expiry(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"group_expiry": 2}}
    }
    page = await staff_page_through_the_app()

    await asyncio.sleep(5)  # more than twice the expiry
    await get_channel_layer().group_send(DASHBOARD_GROUP, {"type": "history.batch", "rows": [ROW]})

    assert await page.receive_json_from(timeout=5) == ROW
    await page.disconnect()


async def test_a_redis_restart_pauses_the_page_then_rows_come_again(redis_layer: PrivateRedis) -> None:
    page = await staff_page_through_the_app()
    await push(redis_layer.url, ROW)
    assert await page.receive_json_from(timeout=5) == ROW

    redis_layer.kill()
    assert await page.receive_json_from(timeout=10) == PAUSED
    await asyncio.sleep(1)  # several failed retries: still one frame
    redis_layer.start()  # empty: the group is gone
    assert await page.receive_json_from(timeout=10) == RESUMED

    await push(redis_layer.url, ROW)
    assert await page.receive_json_from(timeout=5) == ROW
    assert await page.receive_nothing()
    await page.disconnect()


async def test_a_page_opened_while_redis_is_down_is_told_at_once(settings: Any) -> None:
    with PrivateRedis(start=False) as redis:
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [redis_host(redis.url)]},
            }
        }
        page = await staff_page_through_the_app()
        assert await page.receive_json_from(timeout=5) == PAUSED

        redis.start()
        assert await page.receive_json_from(timeout=10) == RESUMED
        await push(redis.url, ROW)
        assert await page.receive_json_from(timeout=5) == ROW
        await page.disconnect()
        await get_channel_layer().close_pools()
