"""The dashboard's websocket: a recorded probe reaches an open page; only staff may listen."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser, User
from django.db import connections
from django.test import Client

from llm.consumers import DashboardConsumer
from llm.history import HistoryRecorder
from llm.results import ProbeResult
from serdabot.asgi import application

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
        application, "/ws/dashboard/", headers=[(b"cookie", cookie), (b"origin", b"http://127.0.0.1:8000")]
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
