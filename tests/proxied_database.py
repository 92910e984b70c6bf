"""The test database cut from under the code: through a TcpProxy a test cuts (PostgreSQL
runs only), or made unreachable on either pass."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.db import connection

from serdabot.database import close_connection
from tests.faults import TcpProxy
from tests.services import postgres_pass_only
from tests.subprocesses import free_port


@contextlib.asynccontextmanager
async def database_through_a_proxy() -> AsyncIterator[TcpProxy]:
    """From the thread sync_to_async runs database code in (the history writer's, the caches'):
    its connection is reopened through the proxy, and reopened directly afterwards."""
    postgres_pass_only()
    config = connection.settings_dict  # shared by every thread's connection
    original = config["HOST"], config["PORT"]
    with TcpProxy((original[0] or "127.0.0.1", int(original[1] or 5432))) as proxy:
        config["HOST"], config["PORT"] = "127.0.0.1", str(proxy.port)
        await sync_to_async(close_connection)()
        try:
            yield proxy
        finally:
            config["HOST"], config["PORT"] = original
            await sync_to_async(close_connection)()


@contextlib.asynccontextmanager
async def database_away() -> AsyncIterator[None]:
    """The test database unreachable from the thread sync_to_async runs database code in, on
    either pass: SQLite's file moved under a directory that does not exist, PostgreSQL's port
    moved to one where nothing listens. Reachable again on leaving."""
    config = connection.settings_dict
    original = config["NAME"], config["HOST"], config["PORT"]
    if connection.vendor == "sqlite":
        config["NAME"] = "/nonexistent-serdabot-dir/db.sqlite3"
    else:
        config["HOST"], config["PORT"] = "127.0.0.1", str(free_port())
    await sync_to_async(close_connection)()
    try:
        yield
    finally:
        config["NAME"], config["HOST"], config["PORT"] = original
        await sync_to_async(close_connection)()
