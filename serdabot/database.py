"""The database as an outage-prone dependency: its name for log lines, and waiting for it.

A process names the database it cannot reach (vendor and host/name, or the SQLite
path; never a user or a password), waits for it at start instead of dying with a
traceback, and notices a SQLite file deleted or replaced under it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from asgiref.sync import sync_to_async
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from serdabot.outage import Outage, connection_errors

log = logging.getLogger("serdabot.database")


class Stopped(BaseException):
    """SIGTERM while waiting for the database (a BaseException, like KeyboardInterrupt:
    no `except Exception` in a driver's connect may swallow it)."""


def database_label(alias: str = DEFAULT_DB_ALIAS) -> str:
    """E.g. `PostgreSQL database "serdabot" at db.example:5432`, `SQLite database /srv/db.sqlite3`."""
    connection = connections[alias]
    return label_of(connection.vendor, connection.settings_dict)


def label_of(vendor: str, config: Mapping[str, Any]) -> str:
    name = str(config.get("NAME") or "")
    if vendor == "sqlite":
        return f"SQLite database {name}"
    brand = {"postgresql": "PostgreSQL", "mysql": "MySQL", "oracle": "Oracle"}.get(vendor, vendor)
    host = str(config.get("HOST") or "") or "the local socket"
    port = str(config.get("PORT") or "")
    return f'{brand} database "{name}" at {host}{":" + port if port else ""}'


def is_unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be reached or used, rather than a row was bad."""
    return isinstance(exc, connection_errors())


def close_connection(alias: str = DEFAULT_DB_ALIAS) -> None:
    """Drop this thread's connection after a connection error, so the next query reconnects."""
    with contextlib.suppress(Exception):
        connections[alias].close()


@contextlib.contextmanager
def reconnecting(alias: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Database work of a long-running loop (sync code): a connection an error may have broken
    is closed, so the loop's next try reconnects instead of failing on it after the outage."""
    try:
        yield
    except DatabaseError:
        close_connection(alias)
        raise


async def load_through_outage(load: Callable[[], None], outage: Outage) -> bool:
    """`load()` on the database thread, reconnecting first if the last connection broke.

    For in-memory snapshots read from the database (channel settings, blocked terms): False
    when the database is away, and the caller keeps its last snapshot; `outage` says so once
    per outage, however many tries it lasts.
    """

    def reconnect_and_load() -> None:
        with reconnecting():
            load()

    try:
        await sync_to_async(reconnect_and_load)()
    except DatabaseError as exc:
        outage.failed(exc)
        return False
    outage.recovered()
    return True


def ping(alias: str = DEFAULT_DB_ALIAS) -> None:
    """One round trip on this thread's connection (reconnecting if needed); raises if unreachable."""
    connection = connections[alias]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except BaseException:
        close_connection(alias)
        raise


def wait_for_database(
    check: Callable[[], None],
    *,
    who: str,
    logger: logging.Logger = log,
    first: float = 0.5,
    cap: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Call `check` until the database answers it (sync code, before the event loop starts).

    One warning names the database when it cannot be reached, none per retry, and one
    line says when it is back. Anything else `check` raises (pending migrations, bad
    settings) is not an outage and goes up at once. SIGTERM during the wait raises
    `Stopped`, SIGINT KeyboardInterrupt: the caller exits quietly.
    """
    outage = Outage(who, database_label(), logger, first=first, cap=cap)
    with _sigterm_stops():
        while True:
            try:
                check()
            except connection_errors() as exc:
                close_connection()
                sleep(outage.failed(exc))
                continue
            outage.recovered()
            return


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class DatabaseFile:
    """The SQLite file of a database, watched so its deletion or replacement is noticed.

    SQLite keeps writing to a deleted file through an open connection, and a new
    connection silently creates an empty one: either way the history would vanish.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._identity: tuple[int, int] | None = None

    @classmethod
    def of(cls, alias: str = DEFAULT_DB_ALIAS) -> DatabaseFile | None:
        """The file of `alias`, or None when it is not SQLite or lives in memory (tests)."""
        connection = connections[alias]
        name = str(connection.settings_dict.get("NAME") or "")
        if connection.vendor != "sqlite" or not name or name == ":memory:" or name.startswith("file:"):
            return None
        return cls(Path(name))

    def remember(self) -> None:
        """Take the file as it is now as the right one (when there is one)."""
        with contextlib.suppress(OSError):
            self._identity = self._stat()

    def problem(self) -> str | None:
        """ "deleted" or "replaced" once the remembered file is gone; None while it is there."""
        if self._identity is None:
            self.remember()
            return None
        try:
            now = self._stat()
        except FileNotFoundError:
            return "deleted"
        except OSError:
            return None  # unreadable for a moment (permissions, NFS): not proof of anything
        return None if now == self._identity else "replaced"

    def _stat(self) -> tuple[int, int]:
        st = os.stat(self.path)
        return st.st_dev, st.st_ino
