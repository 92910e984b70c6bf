"""The websocket Origin check: scheme, host and port, against the Host and the trusted origins."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client

from serdabot.asgi import application
from tests.subprocesses import admin_login, bot_env, uvicorn_serving

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-test-password-42"


@pytest.fixture(autouse=True)
def in_memory_layer(settings: Any) -> Iterator[None]:
    """The Origin check is the middleware's: the sockets it lets through need no Redis. On
    Redis (CI's second pass), a web chat socket closed by the test client leaves channels'
    receive task in channels_redis, which the event loop's teardown then waits on forever."""
    from channels import DEFAULT_CHANNEL_LAYER
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    yield
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)


def staff_cookie() -> bytes:
    client = Client()
    staff, _ = User.objects.get_or_create(username="staff", defaults={"is_staff": True})
    client.force_login(staff)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def opens(
    origin: str | None,
    host: str = "127.0.0.1:8000",
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> bool:
    """Whether a staff member's web chat socket opens through the whole ASGI application."""
    headers = [(b"cookie", await sync_to_async(staff_cookie)()), (b"host", host.encode()), *extra]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    socket = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    connected, code = await socket.connect()
    if connected:
        await socket.disconnect()
    else:
        assert code == 1000  # closed by the Origin check, not by the consumer (4403)
    await sync_to_async(connections.close_all)()
    return connected


async def test_the_sites_own_origin_opens() -> None:
    assert await opens("http://127.0.0.1:8000")


async def test_the_same_host_on_another_port_is_refused() -> None:
    assert not await opens("http://127.0.0.1:9000")


async def test_another_scheme_is_refused() -> None:
    assert not await opens("https://127.0.0.1:8000")


async def test_another_allowed_host_is_not_this_connections_origin() -> None:
    # localhost is in ALLOWED_HOSTS, but the page was not served from it.
    assert not await opens("http://localhost:8000")


async def test_a_host_outside_allowed_hosts_is_refused_even_matching_its_origin() -> None:
    # A rebinding domain pointed at the server: Host and Origin agree, ALLOWED_HOSTS does not.
    assert not await opens("http://evil.example:8000", host="evil.example:8000")


async def test_a_missing_or_malformed_origin_is_refused() -> None:
    assert not await opens(None)
    assert not await opens("null")
    assert not await opens("http://127.0.0.1:8000/dashboard")


async def test_default_ports_need_not_be_written(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["bot.example.com"]

    assert await opens("http://bot.example.com", host="bot.example.com:80")
    assert await opens("http://BOT.example.com:80", host="bot.example.com")


async def test_a_csrf_trusted_origin_opens_on_its_scheme_and_port_only(settings: Any) -> None:
    # A proxy that forwards another Host: the public origin is listed as trusted.
    settings.CSRF_TRUSTED_ORIGINS = ["https://bot.example.com"]

    assert await opens("https://bot.example.com")
    assert not await opens("https://bot.example.com:8443")
    assert not await opens("http://bot.example.com")
    assert not await opens("https://other.example.com")


async def test_a_wildcard_trusted_origin_covers_subdomains(settings: Any) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.example.com"]

    assert await opens("https://dash.example.com")
    assert not await opens("http://dash.example.com")
    assert not await opens("https://dash.example.com:8443")
    assert not await opens("https://dash.example.org")


async def test_behind_a_tls_proxy_the_forwarded_scheme_counts(settings: Any) -> None:
    # What DEBUG=0 configures: Django reads the scheme from the proxy's X-Forwarded-Proto.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["bot.example.com"]
    forwarded = ((b"x-forwarded-proto", b"https"),)

    assert await opens("https://bot.example.com", host="bot.example.com", extra=forwarded)
    assert not await opens("http://bot.example.com", host="bot.example.com", extra=forwarded)
    assert not await opens("https://bot.example.com", host="bot.example.com")


# The real web process: uvicorn (proxy headers on, its default), a logged-in staff member.


@pytest.fixture
def web(local_dir: Path) -> Iterator[int]:
    env = bot_env(local_dir, DJANGO_SUPERUSER_PASSWORD=PASSWORD)
    with uvicorn_serving(env) as port:
        yield port


async def chat_opens(port: int, session: str, origin: str, **extra: str) -> bool:
    headers = {"Cookie": f"sessionid={session}", "Origin": origin, **extra}
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/chat/", additional_headers=headers):
            return True
    except websockets.InvalidStatus as refused:
        assert refused.response.status_code == 403
        return False


async def test_the_web_process_checks_scheme_and_port(web: int) -> None:
    client = await asyncio.to_thread(admin_login, web, "streamer", PASSWORD)
    session = str(client.cookies["sessionid"])
    client.close()

    assert await chat_opens(web, session, f"http://127.0.0.1:{web}")
    assert not await chat_opens(web, session, f"http://127.0.0.1:{web + 1}")
    assert not await chat_opens(web, session, f"https://127.0.0.1:{web}")
    # A TLS proxy on 127.0.0.1 (trusted by uvicorn) forwards the page's https scheme.
    forwarded = {"X-Forwarded-Proto": "https"}
    assert await chat_opens(web, session, f"https://127.0.0.1:{web}", **forwarded)
    assert not await chat_opens(web, session, f"http://127.0.0.1:{web}", **forwarded)
