"""The documented multi-process layout, as real processes, for tests and bench/soak.py.

uvicorn serves the web; one `runbot --no-web --no-worker` runs the Twitch adapter
(against a fake Twitch); `runbot --no-web --no-adapters` processes run workers; they
share PostgreSQL and Redis. Each process logs to its own file (one per start) for a
failure's post-mortem, and can be killed, stopped and started again by name.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.fakes.fake_twitch import FakeTwitch
from tests.fakes.openai_server import FakeOpenAI
from tests.subprocesses import ROOT, admin_login, bot_env, free_port, manage

PASSWORD = "multi-process-password-42"
MANAGE_PY = str(ROOT / "manage.py")
UVICORN = (sys.executable, "-m", "uvicorn", "serdabot.asgi:application")
ADAPTERS = (sys.executable, MANAGE_PY, "runbot", "--no-web", "--no-worker")
WORKER = (sys.executable, MANAGE_PY, "runbot", "--no-web", "--no-adapters")
BOOTS = "SELECT count(*) FROM llm_bootdetection WHERE found"


@dataclass
class Proc:
    """One named process and every log file it wrote, one per start."""

    name: str
    args: tuple[str, ...]
    process: asyncio.subprocess.Process
    logs: list[Path] = field(default_factory=list)
    expected_exit: bool = False  # killed or stopped on purpose

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def log(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.logs if path.exists())


class Processes:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: list[Proc] = []
        self._started = 0

    def __getitem__(self, name: str) -> Proc:
        return next(p for p in self.procs if p.name == name)

    async def start(self, *args: str, name: str = "", env: dict[str, str] | None = None) -> Proc:
        """Start `args` under `name` (or a numbered one); a stopped name starts again."""
        name = name or f"process-{len(self.procs)}"
        self._started += 1
        # Each start of each process logs to its own file under the logs dir.
        path = self.logs / f"{self._started:02d}-{name}.log"
        with path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *args,
                cwd=ROOT,
                env={**self.env, **(env or {})},
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        existing = next((p for p in self.procs if p.name == name), None)
        if existing is None:
            proc = Proc(name, tuple(args), process, [path])
            self.procs.append(proc)
            return proc
        assert existing.returncode is not None, f"{name} is still running"
        existing.process, existing.args, existing.expected_exit = process, tuple(args), False
        existing.logs.append(path)
        return existing

    async def restart(self, name: str) -> Proc:
        proc = self[name]
        if proc.returncode is None:
            await self.kill(name)
        return await self.start(*proc.args, name=name)

    async def kill(self, name: str) -> None:
        """SIGKILL, as the OOM killer or a crash would: no shutdown code runs."""
        await self.signal(name, signal.SIGKILL)

    async def terminate(self, name: str, grace: float = 30.0) -> int | None:
        """SIGTERM and wait for the exit code (None: it had to be killed)."""
        await self.signal(name, signal.SIGTERM, wait=False)
        return await self._wait(self[name], grace)

    async def signal(self, name: str, sig: int, *, wait: bool = True) -> None:
        proc = self[name]
        proc.expected_exit = True
        if proc.returncode is None:
            proc.process.send_signal(sig)
            if wait:
                await proc.process.wait()

    def unexpected_exits(self) -> list[tuple[str, int]]:
        """Processes that ended without being killed or stopped: (name, exit code)."""
        return [
            (p.name, p.returncode) for p in self.procs if p.returncode is not None and not p.expected_exit
        ]

    async def stop(self, names: Iterable[str] | None = None, grace: float = 30.0) -> list[int | None]:
        """SIGTERM the processes (all by default) at once; exit codes, None for one that had to be killed."""
        chosen = [self[n] for n in names] if names is not None else list(self.procs)
        for proc in chosen:
            proc.expected_exit = True
            if proc.returncode is None:
                proc.process.send_signal(signal.SIGTERM)
        return list(await asyncio.gather(*(self._wait(p, grace) for p in chosen)))

    @staticmethod
    async def _wait(proc: Proc, grace: float) -> int | None:
        try:
            return await asyncio.wait_for(proc.process.wait(), grace)
        except TimeoutError:
            proc.process.kill()
            await proc.process.wait()
            return None


async def eventually(check: Callable[[], object], what: str, deadline: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not check():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def count(database_url: str, sql: str) -> int:
    with psycopg.connect(database_url, connect_timeout=5) as db:
        row = db.execute(sql).fetchone()
    return int(row[0]) if row else 0


def set_phrases(database_url: str, phrases: dict[str, str]) -> None:
    """Make `text` the only enabled phrase of each intent slug, so a test can tell them apart."""
    with psycopg.connect(database_url, autocommit=True) as db:
        for slug, text in phrases.items():
            db.execute(
                "UPDATE fallbacks_phrase SET enabled = false WHERE intent_id IN "
                "(SELECT id FROM fallbacks_intent WHERE slug = %s)",
                (slug,),
            )
            db.execute(
                "INSERT INTO fallbacks_phrase (intent_id, text, enabled) "
                "SELECT id, %s, true FROM fallbacks_intent WHERE slug = %s",
                (text, slug),
            )


async def login(port: int) -> str:
    """A session cookie for the dashboard, from the real admin login form."""
    client = await asyncio.to_thread(admin_login, port, "host", PASSWORD)
    client.close()
    return str(client.cookies["sessionid"])


@asynccontextmanager
async def dashboard_socket(port: int) -> AsyncIterator[Any]:
    """A staff dashboard's live websocket on the web process, logged in and from the site's Origin."""
    import websockets

    session = await login(port)
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ws/dashboard/",
        additional_headers={"Cookie": f"sessionid={session}", "Origin": f"http://127.0.0.1:{port}"},
    ) as socket:
        yield socket


async def announce_phrase_change(redis: str, *, group_expiry: int = 86400) -> None:
    """What a phrase edit in the admin broadcasts, sent on the layer as another process would."""
    from channels_redis.core import RedisChannelLayer

    from serdabot.broadcast import GROUP
    from serdabot.redis_hosts import redis_host

    # The sender's group_expiry decides which members a group_send still reaches.
    layer = RedisChannelLayer(hosts=[redis_host(redis)], group_expiry=group_expiry)
    await layer.group_send(GROUP, {"type": "config.changed", "what": "fallbacks"})
    await layer.close_pools()


def tracebacks(text: str) -> list[str]:
    """Each traceback in a log, with the line before it (what was being done)."""
    lines = text.splitlines()
    return [
        "\n".join(lines[max(i - 1, 0) : i + 12])
        for i, line in enumerate(lines)
        if line.startswith("Traceback")
    ]


def outage_warnings(text: str) -> list[str]:
    """The log's "X: cannot reach Y" lines (serdabot.outage), one per loop and outage when all is well."""
    return [line for line in text.splitlines() if re.search(r"cannot reach|unreachable", line, re.IGNORECASE)]


def outage_key(line: str) -> str:
    """Which loop an outage warning comes from: its logger and text, without time or error."""
    return re.sub(r"^\S+ \S+ \S+ ", "", line).split(" (")[0]


class Layout:
    """The processes of one multi-process deployment, and the fakes at its edges."""

    def __init__(
        self,
        tmp: Path,
        *,
        twitch: FakeTwitch,
        model: FakeOpenAI,
        database_url: str,
        check_url: str,
        redis_url: str,
        channels: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.twitch, self.model = twitch, model
        self.database_url = database_url  # what the processes use (maybe through a proxy)
        self.check_url = check_url  # what the test reads the database with
        self.redis_url = redis_url
        self.port = free_port()
        twitch_env = twitch.env(channels=tuple(channels)) if channels else twitch.env()
        self.env = bot_env(
            tmp,
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            LLM_ENDPOINT=model.url,
            LLM_PROBE_INTERVAL="1",
            DJANGO_SUPERUSER_PASSWORD=PASSWORD,
            **twitch_env,
        )
        self.env.update(env or {})
        logs = tmp / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.processes = Processes(self.env, logs)
        self.workers: list[str] = []

    async def migrate(self) -> None:
        """The database schema and the dashboard's user, as a deployment's first steps."""
        env = {**self.env, "DATABASE_URL": self.check_url}
        for command in (
            ("migrate", "--noinput"),
            ("createsuperuser", "--noinput", "--username", "host", "--email", "h@example.com"),
        ):
            done = await asyncio.to_thread(manage, env, *command)
            assert done.returncode == 0, done.stderr

    async def set_channel_settings(self, channels: Iterable[str], fields: Mapping[str, Any]) -> None:
        """Through the ORM (`manage.py shell`), so every column gets the model's defaults."""
        data = json.dumps({"channels": list(channels), "fields": dict(fields)})
        code = (
            "import json\n"
            "from chatbridge.models import ChannelSettings\n"
            f"data = json.loads({data!r})\n"
            "for channel in data['channels']:\n"
            "    ChannelSettings.objects.update_or_create("
            "platform='twitch', channel=channel, defaults=data['fields'])\n"
        )
        env = {**self.env, "DATABASE_URL": self.check_url}
        done = await asyncio.to_thread(manage, env, "shell", "-c", code)
        assert done.returncode == 0, done.stderr

    async def start(self, *, web: bool = True, workers: int = 2) -> None:
        if web:
            await self.processes.start(
                *UVICORN, "--port", str(self.port), "--log-level", "warning", name="web"
            )
        await self.processes.start(*ADAPTERS, name="adapters")
        for i in range(workers):
            await self.start_worker(f"worker-{i + 1}")

    async def start_worker(self, name: str) -> None:
        if name not in self.workers:
            self.workers.append(name)
        await self.processes.start(*WORKER, name=name)

    async def ready(self, workers: int | None = None, deadline: float = 60.0) -> None:
        """The adapter reads chat and every worker found the LLM at boot."""
        wanted = len(self.workers) if workers is None else workers
        await eventually(
            lambda: self.twitch.subscriptions, "the adapter process to subscribe to chat", deadline
        )
        await eventually(
            lambda: count(self.check_url, BOOTS) >= wanted, f"{wanted} worker(s) to find the LLM", deadline
        )

    def log(self, name: str) -> str:
        return self.processes[name].log()

    def post_mortem(self) -> str:
        """Every process's log tail, for an assertion message."""
        return "\n".join(
            f"--- {p.name} (exit {p.returncode}) ---\n{p.log()[-3000:]}" for p in self.processes.procs
        )

    async def stop(self) -> list[int | None]:
        return await self.processes.stop()


@asynccontextmanager
async def running_layout(
    tmp: Path,
    *,
    model: FakeOpenAI,
    database_url: str,
    redis_url: str,
    check_url: str = "",
    phrases: dict[str, str] | None = None,
    web: bool = True,
    workers: int = 2,
    wait: bool = True,
    twitch: FakeTwitch | None = None,
    channels: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    channel_settings: Mapping[str, Any] | None = None,
) -> AsyncIterator[Layout]:
    """Migrate, start web + adapters + workers, wait until ready; SIGTERM everything on the way out.

    `channel_settings`: ChannelSettings fields given to every channel in `channels` before
    the processes start (as an operator would set them in the admin)."""
    twitch = twitch or FakeTwitch()
    await twitch.start()
    layout = Layout(
        tmp,
        twitch=twitch,
        model=model,
        database_url=database_url,
        check_url=check_url or database_url,
        redis_url=redis_url,
        channels=channels,
        env=env,
    )
    try:
        await layout.migrate()
        if phrases:
            set_phrases(layout.check_url, phrases)
        if channel_settings:
            await layout.set_channel_settings(channels, channel_settings)
        await layout.start(web=web, workers=workers)
        if wait:
            await layout.ready()
        yield layout
    finally:
        await layout.stop()
        await twitch.close()
