"""`manage.py runbot --platform ...` as a real process, against a fake Twitch in this test."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.adapter_support import eventually
from tests.fakes.fake_twitch import FakeTwitch, chat_message
from tests.subprocesses import ROOT, bot_env


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwitch]:
    twitch = await FakeTwitch().start()
    yield twitch
    await twitch.close()


async def runbot(local_dir: Path, fake: FakeTwitch, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "manage.py"),
        "runbot",
        "--no-web",
        *args,
        env=bot_env(local_dir, **fake.env()),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def stop(proc: asyncio.subprocess.Process, seen: list[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    rest, _ = await asyncio.wait_for(proc.communicate(), 30)
    return "".join(seen) + rest.decode()


async def read_until(proc: asyncio.subprocess.Process, marker: str, seen: list[str]) -> None:
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        if not line:
            raise AssertionError("runbot exited:\n" + "".join(seen))
        seen.append(line)
        if marker in line:
            return


async def test_runbot_platform_twitch_answers_twitch_chat(local_dir: Path, fake: FakeTwitch) -> None:
    proc = await runbot(local_dir, fake, "--platform", "twitch")
    seen: list[str] = []
    try:
        await read_until(proc, "Twitch: connected", seen)
        notification = chat_message("!ask tu tournes ?")
        await fake.push(notification)
        asked = notification["payload"]["event"]["message_id"]
        await eventually(lambda: fake.replies_to(asked), what="the reply from runbot")
    finally:
        output = await stop(proc, seen)

    assert proc.returncode == 0, output
    assert "Stopped." in output
    assert "connection lost" not in output  # stopping is not losing the connection
    assert fake.replies_to(asked)[0]["message"].startswith("@Viewer32 ")
    for secret in (fake.client_secret, *fake.user_tokens, *fake.refresh_tokens):
        assert secret not in output


async def test_runbot_platform_discord_leaves_twitch_alone(local_dir: Path, fake: FakeTwitch) -> None:
    proc = await runbot(local_dir, fake, "--platform", "discord")
    seen: list[str] = []
    try:
        await read_until(proc, "No chat platform configured", seen)
    finally:
        output = await stop(proc, seen)

    assert proc.returncode == 0, output
    assert "DISCORD_TOKEN" in output
    assert fake.requests == []
