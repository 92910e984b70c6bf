"""serdabot/process.py: which process wrote a history row."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatbridge.management.commands.runbot import role_of
from serdabot import process
from tests.subprocesses import ROOT, bot_env, manage


@pytest.fixture(autouse=True)
def no_role() -> Iterator[None]:
    process.reset()
    yield
    process.reset()


def test_it_names_host_pid_and_other_until_a_role_is_set() -> None:
    assert process.identity() == (socket.gethostname(), os.getpid(), "other")

    process.set_role("worker")

    assert process.identity() == process.ProcessIdentity(socket.gethostname(), os.getpid(), "worker")
    assert process.identity() is process.identity()  # computed once


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="web, bot, adapters, worker, console"):
        process.set_role("adapters+worker")
    assert process.role() == "other"


def test_a_default_role_never_replaces_the_one_set() -> None:
    process.set_default_role("web")
    assert process.role() == "web"

    process.set_role("bot")
    process.set_default_role("web")  # runbot serving serdabot.asgi

    assert process.role() == "bot"


def test_a_forked_child_has_its_own_pid() -> None:
    process.set_role("worker")
    parent = process.identity()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.write(write, str(process.identity().pid).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        reported = int(pipe.read())
    os.waitpid(child, 0)

    assert reported == child != parent.pid


def test_the_asgi_application_runs_as_web(tmp_path: Path) -> None:
    code = "import serdabot.asgi; from serdabot.process import identity; print(identity().role)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=bot_env(tmp_path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "web"


def test_chat_writes_its_history_as_console(local_dir: Path) -> None:
    result = manage(bot_env(local_dir), "chat", "-m", "!ask salut")
    assert result.returncode == 0, result.stderr

    with sqlite3.connect(local_dir / "db.sqlite3") as db:
        roles = db.execute(
            "SELECT role FROM llm_bootdetection UNION ALL SELECT role FROM llm_cascadecall "
            "UNION ALL SELECT role FROM llm_tierevent"
        ).fetchall()
    assert len(roles) >= 3
    assert set(roles) == {("console",)}


@pytest.mark.parametrize(
    ("platforms", "worker", "role"),
    [
        ({"twitch", "discord", "web"}, True, "bot"),  # runbot
        ({"twitch"}, True, "bot"),
        ({"twitch", "discord"}, False, "adapters"),  # runbot --no-worker --no-web
        (set(), True, "worker"),  # runbot --no-adapters --no-web
        ({"web"}, True, "worker"),  # the web chat's answers come from this worker
        ({"web"}, False, "web"),
    ],
)
def test_runbot_names_its_role_from_what_it_runs(platforms: set[str], worker: bool, role: str) -> None:
    assert role_of(platforms, worker=worker) == role
