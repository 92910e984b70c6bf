"""PostgreSQL and Redis for the tests that need both, as separate processes see them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def unavailable(reason: str) -> None:
    """Skip locally; in CI a missing service is a failure, not a silent skip."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI needs this service: {reason}")
    pytest.skip(reason)


def postgres_pass_only() -> None:
    """For in-process tests of PostgreSQL's own behaviour: CI's second pass (DATABASE_URL on
    PostgreSQL) runs them, so the SQLite pass skips them even in CI."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL pass (DATABASE_URL=postgres://...)")


def redis_url() -> str:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.flushdb()  # a database of its own (index 14 by default): nothing else lives there
        client.close()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL}: {type(exc).__name__}")
    return REDIS_URL


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for processes started by a test; dropped afterwards."""
    import psycopg

    name = f"serdabot_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at {POSTGRES_URL}: {type(exc).__name__}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            parts = urlsplit(POSTGRES_URL)
            yield urlunsplit(parts._replace(path=f"/{name}"))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
