"""`manage.py runbot` as a real process: it starts, serves the web chat, and stops on a signal."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.subprocesses import ROOT, admin_login, bot_env, free_port, manage, start_runbot, wait_for_port

PASSWORD = "a-long-test-password-42"


@pytest.fixture
def runbot(local_dir: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    env = bot_env(local_dir, DJANGO_SUPERUSER_PASSWORD=PASSWORD)
    created = manage(
        env, "createsuperuser", "--noinput", "--username", "streamer", "--email", "s@example.com"
    )
    assert created.returncode == 0, created.stderr
    port = free_port()
    proc = start_runbot(env, port)
    try:
        wait_for_port(port, proc=proc)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def login(port: int) -> httpx.Client:
    return admin_login(port, "streamer", PASSWORD)


async def ask_over_websocket(port: int, session: str, text: str) -> dict[str, object]:
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ws/chat/",
        additional_headers={"Cookie": f"sessionid={session}", "Origin": f"http://127.0.0.1:{port}"},
    ) as ws:
        await ws.send(json.dumps({"text": text}))
        return dict(json.loads(await asyncio.wait_for(ws.recv(), 20)))


def test_it_serves_the_web_chat_and_stops_on_sigterm(runbot: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = runbot
    anonymous = httpx.get(f"http://127.0.0.1:{port}/chat/")
    assert anonymous.status_code == 302
    assert "/admin/login/" in anonymous.headers["location"]

    client = login(port)
    page = client.get("/chat/", headers={"Accept-Language": "en"})  # French by default
    assert page.status_code == 200
    assert "Web chat" in page.text

    answer = asyncio.run(ask_over_websocket(port, client.cookies["sessionid"], "!ask c'est quoi un GPU ?"))
    assert answer["source"] == "fallback"
    assert answer["intent"] == "ask"
    assert str(answer["reply"]).startswith("@streamer ")

    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    assert "Stopped." in output


def test_an_anonymous_websocket_is_refused(runbot: tuple[subprocess.Popen[str], int]) -> None:
    _, port = runbot

    async def connect() -> None:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws/chat/", additional_headers={"Origin": f"http://127.0.0.1:{port}"}
        ) as ws:
            await ws.recv()

    with pytest.raises((websockets.exceptions.InvalidStatus, websockets.exceptions.ConnectionClosed)):
        asyncio.run(connect())


def test_without_web_it_names_the_platform_variables_and_stops_on_sigint(local_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runbot", "--no-web"],
        env=bot_env(local_dir),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "No chat platform configured" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=20)
    output = "".join(seen) + rest
    assert proc.returncode == 0, output
    assert "TWITCH_CLIENT_ID" in output and "DISCORD_TOKEN" in output
    assert "Stopped." in output


def test_a_busy_port_is_one_line_naming_another_port(local_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = manage(bot_env(local_dir), "runbot", "--port", str(port))

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"Port {port} is already in use" in lines[0]
    assert "--port " in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
