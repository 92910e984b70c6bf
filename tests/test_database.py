"""serdabot/database.py: naming the database, waiting for it, watching its SQLite file."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import pytest
from django.db import OperationalError

from serdabot.database import DatabaseFile, Stopped, database_label, label_of, wait_for_database


def test_a_label_names_vendor_name_and_host_never_the_credentials() -> None:
    config = {"NAME": "serdabot", "USER": "bot", "PASSWORD": "hunter2-secret", "HOST": "db.lan", "PORT": 5432}

    label = label_of("postgresql", config)

    assert label == 'PostgreSQL database "serdabot" at db.lan:5432'
    assert label_of("postgresql", {"NAME": "serdabot", "HOST": "", "PORT": ""}) == (
        'PostgreSQL database "serdabot" at the local socket'
    )
    assert label_of("sqlite", {"NAME": "/srv/bot/db.sqlite3"}) == "SQLite database /srv/bot/db.sqlite3"


class Database:
    """What `check` meets: down for `failures` calls, then up."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def check(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise OperationalError(
                'connection to server at "127.0.0.1", port 1 failed: Connection refused\nmore'
            )


@pytest.mark.django_db
def test_it_waits_saying_so_once_and_once_more_when_the_database_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    database, slept = Database(failures=5), list[float]()

    with caplog.at_level(logging.INFO, logger="serdabot.database"):
        wait_for_database(database.check, who="runbot", sleep=slept.append, first=0.5, cap=2.0)

    assert database.calls == 6
    assert len(slept) == 5
    assert max(slept) <= 2.0  # capped backoff
    assert slept[1] > slept[0]
    first, back = caplog.records
    assert first.getMessage().startswith(f"runbot: cannot reach {database_label()} (")
    assert "OperationalError: connection to server" in first.getMessage()
    assert "more" not in first.getMessage()  # one line, no traceback
    assert "is back after" in back.getMessage()


@pytest.mark.django_db
def test_anything_but_an_unreachable_database_goes_up_at_once() -> None:
    def check() -> None:
        raise RuntimeError("the database needs 3 migration(s)")

    with pytest.raises(RuntimeError, match="migration"):
        wait_for_database(check, who="runbot", sleep=lambda _: None)


@pytest.mark.django_db
def test_sigterm_while_waiting_stops_the_wait_and_the_previous_handler_comes_back() -> None:
    before = signal.getsignal(signal.SIGTERM)

    def sleep(_: float) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Stopped):
        wait_for_database(Database(failures=100).check, who="runbot", sleep=sleep)

    assert signal.getsignal(signal.SIGTERM) is before


def test_a_watched_file_deleted_or_replaced_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    path.write_bytes(b"one")
    watch = DatabaseFile(path)
    watch.remember()
    assert watch.problem() is None

    path.write_bytes(b"written in place")  # the same file: fine
    assert watch.problem() is None

    # Held open, as the bot's own connection holds it: its inode cannot go to the new file.
    with path.open("rb"):
        path.unlink()
        assert watch.problem() == "deleted"

        path.write_bytes(b"a new, empty database")
        assert watch.problem() == "replaced"


def test_a_file_not_there_at_first_is_watched_from_when_it_appears(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    watch = DatabaseFile(path)
    watch.remember()
    assert watch.problem() is None

    path.write_bytes(b"")
    assert watch.problem() is None  # remembered now
    os.replace(tmp_path / "db.sqlite3", tmp_path / "moved")
    assert watch.problem() == "deleted"
