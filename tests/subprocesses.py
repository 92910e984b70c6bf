"""Running `manage.py` commands as real processes, each on its own SQLite database."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
# Variables from the developer's shell that would change what the bot does.
_SCRUB = ("LLM_", "OPENAI_", "FALLBACK_MODE", "TWITCH_", "DISCORD_", "SERDABOT_", "PROMPT_", "BOT_NAME")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_endpoint() -> str:
    """An LLM endpoint where nothing listens: connections are refused at once."""
    return f"http://127.0.0.1:{free_port()}/v1"


def bot_env(local_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    # Tests of the embedded defaults must not pick up a developer's or CI's services.
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update(
        SERDABOT_LOCAL_DIR=str(local_dir),
        # Nor a developer's `.env` at the project root (a test names its own file).
        SERDABOT_ENV_FILE=os.devnull,
        LLM_ENDPOINT=closed_endpoint(),
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="serdabot.settings",
    )
    env.update(extra)
    return env


def manage(
    env: dict[str, str], *args: str, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def migrated_copy(template: Path, target: Path) -> Path:
    """A fresh copy of an already migrated local dir (migrating every test is slow)."""
    shutil.copytree(template, target)
    return target


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


def admin_login(port: int, username: str, password: str) -> httpx.Client:
    """A client logged in through the real admin login form of a server on 127.0.0.1."""
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}")
    page = client.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None, page.text
    form = {"csrfmiddlewaretoken": token.group(1), "username": username, "password": password, "next": "/"}
    response = client.post("/admin/login/", data=form)
    assert response.status_code == 302, response.text
    return client


def start_runbot(
    env: dict[str, str], port: int, *args: str, stderr: int = subprocess.STDOUT
) -> subprocess.Popen[str]:
    """`manage.py runbot --port PORT *args` as a real process, its output on a pipe (stderr merged
    into it by default)."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runbot", "--port", str(port), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


@contextlib.contextmanager
def uvicorn_serving(env: dict[str, str], username: str = "streamer") -> Iterator[int]:
    """uvicorn serving the real application on a free port, as the web process does, with a
    superuser `username` (password from DJANGO_SUPERUSER_PASSWORD in `env`)."""
    created = manage(env, "createsuperuser", "--noinput", "--username", username, "--email", "s@x.org")
    assert created.returncode == 0, created.stderr
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "serdabot.asgi:application", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


class ChatSession:
    """`manage.py chat --json` reading stdin: one JSON object back per line sent."""

    def __init__(self, env: dict[str, str], log: Path, *, reply_within: float = 30) -> None:
        self.log = log
        self.reply_within = reply_within
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "chat", "--json"],
            env=env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def say(self, text: str, timeout: float | None = None) -> dict[str, Any]:
        timeout = self.reply_within if timeout is None else timeout
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        try:
            return dict(json.loads(self.lines.get(timeout=timeout)))
        except queue.Empty:
            raise AssertionError(
                f"no reply within {timeout} s; the bot's log:\n{self.log.read_text()}"
            ) from None

    def close(self) -> int:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
