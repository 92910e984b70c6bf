"""The multi-process layout on PostgreSQL + Redis, every part a real process.

uvicorn serves the web; one `runbot --no-web --no-worker` runs the Twitch adapter
(against a fake Twitch); two `runbot --no-web --no-adapters` run workers. A chat
line enters at the adapter, crosses Redis to one of the workers, and exactly one
reply reaches Twitch. A dashboard websocket on the web process sees the probes the
workers record, and a phrase change announced on Redis reaches the workers.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

import psycopg
import pytest
import websockets

from tests.fakes.fake_twitch import STREAMER, FakeTwitch, chat_message
from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI
from tests.services import fresh_postgres_database, redis_url
from tests.subprocesses import ROOT, admin_login, bot_env, free_port, manage

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

PASSWORD = "multi-process-password-42"
MOD = ["moderator"]  # moderators skip the channel cooldown, so every line is answered
UNIQUE_PHRASE = "Phrase posée par le test multi-process, reçue via Redis 📡"


class Processes:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: list[asyncio.subprocess.Process] = []

    def log_file(self) -> BinaryIO:
        # Each process logs to its own file under the test's tmp dir, for a failure's post-mortem.
        return (self.logs / f"process-{len(self.procs)}.log").open("wb")

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        with self.log_file() as log:
            proc = await asyncio.create_subprocess_exec(
                *args, cwd=ROOT, env=self.env, stdout=log, stderr=asyncio.subprocess.STDOUT
            )
        self.procs.append(proc)
        return proc

    async def stop(self) -> list[int | None]:
        """SIGTERM every process; the exit codes, None for one that had to be killed."""
        for proc in self.procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                codes.append(await asyncio.wait_for(proc.wait(), 20))
            except TimeoutError:
                proc.kill()
                await proc.wait()
                codes.append(None)
        return codes


async def eventually(check: Callable[[], object], what: str, deadline: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not check():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def count(database_url: str, sql: str) -> int:
    with psycopg.connect(database_url) as db:
        row = db.execute(sql).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
async def layout(tmp_path: Path) -> AsyncIterator[dict[str, object]]:
    redis = redis_url()
    with fresh_postgres_database() as database_url, FakeOpenAI() as model:
        twitch = await FakeTwitch().start()
        env = bot_env(
            tmp_path,
            DATABASE_URL=database_url,
            REDIS_URL=redis,
            LLM_ENDPOINT=model.url,
            LLM_PROBE_INTERVAL="1",
            DJANGO_SUPERUSER_PASSWORD=PASSWORD,
            **twitch.env(),
        )
        for command in (
            ("migrate", "--noinput"),
            ("createsuperuser", "--noinput", "--username", "host", "--email", "h@example.com"),
        ):
            done = await asyncio.to_thread(manage, env, *command)
            assert done.returncode == 0, done.stderr
        processes = Processes(env, tmp_path)
        port = free_port()
        manage_py = str(ROOT / "manage.py")
        try:
            uvicorn = (sys.executable, "-m", "uvicorn", "serdabot.asgi:application")
            await processes.start(*uvicorn, "--port", str(port), "--log-level", "warning")
            await processes.start(sys.executable, manage_py, "runbot", "--no-web", "--no-worker")
            for _ in range(2):
                await processes.start(sys.executable, manage_py, "runbot", "--no-web", "--no-adapters")
            await eventually(lambda: twitch.subscriptions, "the adapter process to subscribe to chat")
            boots = "SELECT count(*) FROM llm_bootdetection WHERE found"
            await eventually(lambda: count(database_url, boots) >= 2, "both workers to find the LLM")
            yield {
                "port": port,
                "twitch": twitch,
                "model": model,
                "database_url": database_url,
                "redis": redis,
                "processes": processes,
            }
        finally:
            await processes.stop()
            await twitch.close()


async def login(port: int) -> str:
    client = await asyncio.to_thread(admin_login, port, "host", PASSWORD)
    client.close()
    return str(client.cookies["sessionid"])


async def announce_phrase_change(redis: str) -> None:
    from channels_redis.core import RedisChannelLayer

    from serdabot.broadcast import GROUP

    layer = RedisChannelLayer(hosts=[{"address": redis, "socket_timeout": 30}])
    await layer.group_send(GROUP, {"type": "config.changed", "what": "fallbacks"})
    await layer.close_pools()


async def test_one_reply_per_message_across_processes(layout: dict[str, object]) -> None:
    twitch = layout["twitch"]
    model = layout["model"]
    assert isinstance(twitch, FakeTwitch) and isinstance(model, FakeOpenAI)
    port = int(str(layout["port"]))
    database_url = str(layout["database_url"])

    # A dashboard on the web process hears the probes the worker processes record.
    session = await login(port)
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ws/dashboard/",
        additional_headers={"Cookie": f"sessionid={session}", "Origin": f"http://127.0.0.1:{port}"},
    ) as dashboard:
        while True:
            pushed = json.loads(await asyncio.wait_for(dashboard.recv(), 30))
            if pushed["kind"] == "probe":
                break
    assert pushed["data"]["tier"] == "local"

    # Chat enters at the adapter process; a worker process answers each line once.
    ids = [f"mp-{i}" for i in range(12)]
    for i, message_id in enumerate(ids):
        chatter = (str(5_000_000 + i), f"viewer{i}")
        line = chat_message("!ask c'est quoi Redis ?", chatter=chatter, message_id=message_id, badges=MOD)
        await twitch.push(line)
    await eventually(lambda: len(twitch.sent) >= len(ids), "a reply to every message")
    await asyncio.sleep(1.5)  # room for a duplicate to show up, if a second worker answered too
    replied = sorted(m["reply_parent_message_id"] for m in twitch.sent)
    assert replied == sorted(ids), [(m["reply_parent_message_id"], m["message"][:60]) for m in twitch.sent]
    assert all(DEFAULT_ANSWER in m["message"] for m in twitch.sent)
    assert all(m["broadcaster_id"] == STREAMER[0] for m in twitch.sent)
    assert count(database_url, "SELECT count(*) FROM llm_cascadecall WHERE source = 'local'") >= len(ids)

    # A phrase change announced on Redis reaches the workers' caches.
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute(
            "UPDATE fallbacks_phrase SET enabled = false WHERE intent_id IN "
            "(SELECT id FROM fallbacks_intent WHERE slug IN ('ask', 'ask_error'))"
        )
        for slug in ("ask", "ask_error"):
            db.execute(
                "INSERT INTO fallbacks_phrase (intent_id, text, enabled) "
                "SELECT id, %s, true FROM fallbacks_intent WHERE slug = %s",
                (UNIQUE_PHRASE, slug),
            )
    await announce_phrase_change(str(layout["redis"]))
    await asyncio.sleep(1.0)
    model.set_fault("refuse")
    sent_before = len(twitch.sent)
    for i in range(4):
        chatter = (str(6_000_000 + i), f"late{i}")
        line = chat_message("!ask et maintenant ?", chatter=chatter, message_id=f"down-{i}", badges=MOD)
        await twitch.push(line)
    await eventually(lambda: len(twitch.sent) >= sent_before + 4, "fallback replies")
    assert all(UNIQUE_PHRASE in m["message"] for m in twitch.sent[sent_before:])

    # Every process, busy until now, stops on SIGTERM without having to be killed: the
    # bot processes exit 0; uvicorn shuts down, then re-raises the signal it caught (-15).
    processes = layout["processes"]
    assert isinstance(processes, Processes)
    web, *bots = await processes.stop()
    assert web == -signal.SIGTERM
    assert bots == [0, 0, 0]
