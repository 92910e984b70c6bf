"""`runbot` and `chat` as real processes with the database unreachable, deleted or cut off."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from fallbacks import builtin
from tests.faults import proxied_postgres_database
from tests.subprocesses import ROOT, admin_login, bot_env, free_port, manage, wait_for_port

pytestmark = pytest.mark.timeout(120)

PASSWORD = "a-long-test-password-42"


class Output:
    """A process's merged stdout and stderr, read line by line as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """The first line (seen already or to come) containing `text`."""
        for line in self.lines:
            if text in line:
                return line
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                came = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if came is None:
                raise AssertionError(f"exited ({self.proc.wait()}) before saying {text!r}:\n" + self.text)
            self.lines.append(came)
            if text in came:
                return came
        raise AssertionError(f"no line with {text!r} within {timeout} s:\n" + self.text)

    def finish(self, timeout: float = 30.0) -> int:
        code = self.proc.wait(timeout)
        while (line := self._queue.get(timeout=5)) is not None:
            self.lines.append(line)
        return code

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def runbot(env: dict[str, str], *args: str, started: list[subprocess.Popen[str]]) -> Output:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runbot", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started.append(proc)
    return Output(proc)


def closed_database_url() -> str:
    return f"postgres://postgres@127.0.0.1:{free_port()}/serdabot"


def stop(output: Output) -> None:
    output.proc.send_signal(signal.SIGTERM)
    assert output.finish() == 0, output.text
    assert "Traceback" not in output.text, output.text


def test_runbot_waits_for_an_unreachable_database_saying_so_once(
    local_dir: Path, processes: list[subprocess.Popen[str]]
) -> None:
    url = closed_database_url()
    port = url.split(":")[2].split("/")[0]
    output = runbot(bot_env(local_dir, DATABASE_URL=url), "--no-web", started=processes)

    line = output.wait_for("cannot reach")
    assert f'PostgreSQL database "serdabot" at 127.0.0.1:{port}' in line
    assert "retrying until it is back" in line
    assert "postgres@" not in line
    time.sleep(3)  # retries happen meanwhile, silently (backoff from 0.5 s)
    assert output.proc.poll() is None, output.text

    stop(output)
    assert [line for line in output.lines if "WARNING" in line or "ERROR" in line] == [line]
    assert output.lines[-1].endswith("Stopped.")


def test_sigint_while_waiting_for_the_database_exits_quietly(
    local_dir: Path, processes: list[subprocess.Popen[str]]
) -> None:
    output = runbot(bot_env(local_dir, DATABASE_URL=closed_database_url()), "--no-web", started=processes)
    output.wait_for("cannot reach")

    output.proc.send_signal(signal.SIGINT)

    assert output.finish() == 0, output.text
    assert "Traceback" not in output.text


def test_runbot_starts_once_the_database_appears(
    local_dir: Path, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    later = tmp_path / "later"  # does not exist yet: SQLite cannot open the file
    web = free_port()
    output = runbot(
        bot_env(local_dir, DATABASE_URL=f"sqlite:///{later / 'db.sqlite3'}"),
        "--port",
        str(web),
        started=processes,
    )
    line = output.wait_for("cannot reach")
    assert f"SQLite database {later / 'db.sqlite3'}" in line

    later.mkdir()
    shutil.copy(local_dir / "db.sqlite3", later / "db.sqlite3")  # restored, migrated

    assert "is back after" in output.wait_for(f"SQLite database {later / 'db.sqlite3'} is back")
    wait_for_port(web, proc=output.proc)
    stop(output)

    with sqlite3.connect(later / "db.sqlite3") as db:
        boots = db.execute("SELECT process, role, pid, host FROM llm_bootdetection").fetchall()
    [(process, role, pid, host)] = boots
    assert (process, role, pid) == ("runbot", "bot", output.proc.pid)
    assert host


def test_waitfordb_waits_for_the_database_then_exits_0(local_dir: Path, tmp_path: Path) -> None:
    # The web unit runs it before `migrate`: a database still starting is waited for.
    later = tmp_path / "later"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "waitfordb"],
        env=bot_env(local_dir, DATABASE_URL=f"sqlite:///{later / 'db.sqlite3'}"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(proc)
    try:
        assert "retrying until it is back" in output.wait_for("cannot reach")
        assert proc.poll() is None  # still waiting
        later.mkdir()
        shutil.copy(local_dir / "db.sqlite3", later / "db.sqlite3")
        assert output.finish() == 0, output.text
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "is back after" in output.text
    assert "Traceback" not in output.text


def test_a_sqlite_file_deleted_under_runbot_is_reported_and_not_recreated(
    local_dir: Path, processes: list[subprocess.Popen[str]]
) -> None:
    output = runbot(bot_env(local_dir), "--no-web", "--no-adapters", started=processes)
    output.wait_for("LLM not available")
    database = local_dir / "db.sqlite3"

    for path in local_dir.glob("db.sqlite3*"):
        path.unlink()

    line = output.wait_for("was deleted")
    assert line.endswith(
        f"the SQLite database file {database} was deleted while the bot runs: history is not being saved; "
        "restart the bot"
    )
    assert " ERROR " in line
    stop(output)
    assert len([line for line in output.lines if "was deleted" in line]) == 1
    assert not database.exists()


def test_chat_answers_from_built_in_phrases_and_says_the_database_is_unreachable(local_dir: Path) -> None:
    url = closed_database_url()
    port = url.split(":")[2].split("/")[0]

    result = manage(bot_env(local_dir, DATABASE_URL=url), "chat", "--json", "-m", "!ask salut")

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert (data["source"], data["fallback_intent"]) == ("fallback", "ask")
    assert data["reply"].removeprefix("@viewer ") in builtin.PHRASES["ask"]
    assert "Traceback" not in result.stderr
    said = [line for line in result.stderr.splitlines() if "unreachable" in line]
    # One line at start; the last one counts the history rows that could not wait longer.
    assert len(said) == 2, result.stderr
    assert f'PostgreSQL database "serdabot" at 127.0.0.1:{port} unreachable' in said[0]
    assert "built-in phrases" in said[0]
    assert "rows not saved" in said[1]


class BlackHole:
    """A host that takes TCP connections and never says a word: a database behind a network
    partition, or a failover in progress. No reset, no refusal: only a timeout ends a wait."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.held.append(self.server.accept()[0])

    def close(self) -> None:
        for held in self.held:
            held.close()
        self.server.close()


def test_chat_against_a_silent_database_host_answers_and_says_so(local_dir: Path) -> None:
    hole = BlackHole()
    try:
        # Without a connect timeout libpq would wait on the silent host for ever: the
        # subprocess's timeout would fail this test with no reply at all.
        result = manage(
            bot_env(local_dir, DATABASE_URL=f"postgres://postgres@127.0.0.1:{hole.port}/serdabot"),
            "chat",
            "-m",
            "!ask salut",
            timeout=90,
        )
    finally:
        hole.close()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].removeprefix("@viewer ") in builtin.PHRASES["ask"]
    assert f'PostgreSQL database "serdabot" at 127.0.0.1:{hole.port} unreachable' in result.stderr
    assert "Traceback" not in result.stderr


def test_chat_names_an_unreachable_sqlite_file(local_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "db.sqlite3"

    result = manage(bot_env(local_dir, DATABASE_URL=f"sqlite:///{missing}"), "chat", "-m", "!ask salut")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].removeprefix("@viewer ") in builtin.PHRASES["ask"]
    assert f"SQLite database {missing} unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def count_calls(url: str) -> int:
    with psycopg.connect(url) as db:
        row = db.execute("SELECT count(*) FROM llm_cascadecall").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.services
def test_postgresql_cut_at_start_and_mid_run(local_dir: Path, processes: list[subprocess.Popen[str]]) -> None:
    with proxied_postgres_database() as database:
        direct = bot_env(local_dir, DATABASE_URL=database.direct_url, DJANGO_SUPERUSER_PASSWORD=PASSWORD)
        for command in (
            ["migrate", "--noinput"],
            ["createsuperuser", "--noinput", "--username", "streamer", "--email", "s@example.com"],
        ):
            done = manage(direct, *command)
            assert done.returncode == 0, done.stderr
        database.proxy.cut()
        web = free_port()
        output = runbot(bot_env(local_dir, DATABASE_URL=database.url), "--port", str(web), started=processes)

        # At start: one line, then the bot starts by itself once the database is back.
        assert "PostgreSQL database" in output.wait_for("runbot: cannot reach")
        database.proxy.restore()
        output.wait_for("runbot: PostgreSQL database")
        wait_for_port(web, proc=output.proc)
        client = admin_login(web, "streamer", PASSWORD)
        session = client.cookies["sessionid"]

        # Mid-run: replies go on, their history waits and is written once the database is back.
        before = count_calls(database.direct_url)
        # One question: a second one from the same viewer would meet the cooldown.
        answers = asyncio.run(ask_during_a_cut(web, session, database.proxy.cut, count=1))
        assert all(str(answer["reply"]).startswith("@streamer ") for answer in answers)
        assert "PostgreSQL database" in output.wait_for("history: cannot reach")
        database.proxy.restore()
        output.wait_for("history: PostgreSQL database")
        deadline = time.monotonic() + 30
        while count_calls(database.direct_url) < before + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert count_calls(database.direct_url) == before + 1

        stop(output)
    assert len([line for line in output.lines if "history: cannot reach" in line]) == 1


async def ask_during_a_cut(
    port: int, session: str, cut: Callable[[], None], *, count: int
) -> list[dict[str, object]]:
    """Open the web chat while the database answers (the login is read from it), then cut it and ask."""
    import websockets

    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ws/chat/",
        additional_headers={"Cookie": f"sessionid={session}", "Origin": f"http://127.0.0.1:{port}"},
    ) as ws:
        cut()
        answers = []
        for index in range(count):
            await ws.send(json.dumps({"text": f"!ask question {index}"}))
            answers.append(dict(json.loads(await asyncio.wait_for(ws.recv(), 20))))
        return answers
