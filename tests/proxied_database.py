"""The test database reached through a TcpProxy that a test cuts (PostgreSQL runs only)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.db import connection

from serdabot.database import close_connection
from tests.faults import TcpProxy
from tests.services import postgres_pass_only


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
