"""The log of real processes: no misleading third-party hint, no static-file warning, one
line per 404. runbot (with the web server and a Twitch adapter against the fake Twitch),
and uvicorn serving the application alone, as the web process does."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.fake_twitch import FakeTwitch
from tests.subprocesses import ROOT, bot_env, free_port, wait_for_port

STATIC = "/static/chatbridge/webchat.css"
MISSING = "/no-such-page/"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwitch]:
    twitch = await FakeTwitch().start()
    yield twitch
    await twitch.close()


async def read_until(proc: asyncio.subprocess.Process, marker: str, seen: list[str]) -> None:
    assert proc.stdout is not None
    while marker not in "".join(seen[-1:]):
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        if not line:
            raise AssertionError("the process exited:\n" + "".join(seen))
        seen.append(line)


async def ask(port: int) -> None:
    """A static file and a missing page, as a browser would ask for them."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        static = await client.get(STATIC)
        missing = await client.get(MISSING)
    assert static.status_code == 200
    assert static.content == (ROOT / "static" / STATIC.removeprefix("/static/")).read_bytes()
    assert missing.status_code == 404


def assert_quiet(output: str) -> None:
    assert "twitchio[starlette]" not in output
    assert "StreamingHttpResponse" not in output
    assert "Traceback" not in output
    said = [line for line in output.splitlines() if MISSING in line]
    assert len(said) == 1, output
    assert "Not Found" in said[0]


def without_starlette(tmp_path: Path) -> str:
    """A PYTHONPATH on which Starlette cannot be imported, as in a streamer's install
    (requirements.txt has no Starlette; the dev tools bring one in): twitchio then gives
    its hint at every start."""
    hidden = tmp_path / "no-starlette"
    hidden.mkdir()
    (hidden / "starlette.py").write_text('raise ImportError("Starlette is not installed")\n')
    return os.pathsep.join(filter(None, [str(hidden), os.environ.get("PYTHONPATH")]))


async def test_runbot_logs_each_404_once_and_no_misleading_line(
    local_dir: Path, fake: FakeTwitch, tmp_path: Path
) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "manage.py"),
        "runbot",
        "--platform",
        "web",
        "--platform",
        "twitch",
        "--port",
        str(port),
        env=bot_env(local_dir, PYTHONPATH=without_starlette(tmp_path), **fake.env()),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    seen: list[str] = []
    try:
        # Connected: twitchio's client has started, and said at start whatever it says.
        await read_until(proc, "Twitch: connected", seen)
        await asyncio.to_thread(wait_for_port, port)
        await ask(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(proc.communicate(), 30)
    output = "".join(seen) + rest.decode()

    assert proc.returncode == 0, output
    assert_quiet(output)


def test_the_web_process_logs_each_404_once(local_dir: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "serdabot.asgi:application", "--port", str(port)],
        env=bot_env(local_dir),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, proc=proc)
        asyncio.run(ask(port))
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)

    assert_quiet(output)
    # The access log still tells every other request, in the project's format.
    assert "uvicorn.access 127.0.0.1:" in output and f'"GET {STATIC} HTTP/1.1" 200' in output
