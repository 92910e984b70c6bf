"""A week in production, in minutes: the multi-process layout under the faults it brings.

Real processes (uvicorn, one adapters process against the fake Twitch, two workers) on
PostgreSQL and a private `redis-server` of each test's own, which the test kills and
restarts; PostgreSQL is reached through a TCP proxy the test cuts. Whatever happens,
every `!ask` the bot decided to answer gets exactly one reply, and the processes live
on: a reply missing or sent twice, a process that exited, a traceback in a log fails
the test. How fast the replies come is measured by bench/soak.py, not here.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_twitch import OTHER_CHANNEL, STREAMER, FakeTwitch, bot_message, chat_message
from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI
from tests.faults import PrivateRedis, ProxiedDatabase, proxied_postgres_database
from tests.layout import (
    BOOTS,
    Layout,
    announce_phrase_change,
    count,
    dashboard_socket,
    eventually,
    outage_key,
    outage_warnings,
    running_layout,
    set_phrases,
    tracebacks,
)

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

DEADLINE = 4  # LLM_DEADLINE: the adapter's guard answers LLM_DEADLINE + 1.5 s after handing an event over
FAST = {
    "LLM_DEADLINE": str(DEADLINE),
    "LLM_TIMEOUT": "3",
    "LLM_CONNECT_TIMEOUT": "1",
    "LLM_FIRST_TOKEN_TIMEOUT": "3",
    "LLM_STALL_TIMEOUT": "2",
    "LLM_BREAKER_COOLDOWN": "2",
    "LLM_MAX_INFLIGHT_LOCAL": "4",
}
# The only phrase of each set, so a reply tells where it came from.
TIMEOUT_PHRASE = "Réponse de secours du test, le modèle n'a pas répondu à temps ⏱"
CHILL_PHRASE = "Réponse de secours du test pour une mention 🧊"
PHRASES = {"ask_timeout": TIMEOUT_PHRASE, "chill": CHILL_PHRASE}
CHANGED_PHRASE = "Phrase changée pendant que les processus tournaient 📡"
MOD = ["moderator"]  # moderators skip the cooldowns: every line is answered
BOT_PROCESSES = ("adapters", "worker-1", "worker-2")


class Chat:
    """The viewers' side: lines pushed to the fake Twitch, and the bot's replies to each."""

    def __init__(self, twitch: FakeTwitch) -> None:
        self.twitch = twitch
        self.ids: list[str] = []

    async def ask(self, message_id: str, *, broadcaster: tuple[str, str] = STREAMER) -> None:
        await self._push(message_id, "!ask c'est quoi Redis ?", broadcaster)

    async def mention(self, message_id: str) -> None:
        await self._push(message_id, "serdabot tu es là ?", STREAMER)

    async def _push(self, message_id: str, text: str, broadcaster: tuple[str, str]) -> None:
        n = len(self.ids)
        chatter = (str(7_000_000 + n), f"viewer{n}")
        self.ids.append(message_id)
        line = chat_message(text, chatter=chatter, broadcaster=broadcaster, message_id=message_id, badges=MOD)
        await self.twitch.push(line)

    def replies(self, message_id: str) -> list[str]:
        return [m["message"] for m in self.twitch.replies_to(message_id)]

    async def answered(self, ids: Iterable[str], deadline: float = 30.0) -> None:
        wanted = list(ids)
        await eventually(
            lambda: all(self.replies(i) for i in wanted),
            f"a reply to each of {wanted}; missing: {[i for i in wanted if not self.replies(i)]}",
            deadline,
        )

    async def exactly_once(self, settle: float = 2.0) -> None:
        """Every line pushed has one reply, none twice, and no reply answers a line never pushed."""
        await self.answered(self.ids)
        await asyncio.sleep(settle)  # room for a second reply (a late worker's), if one were coming
        counts = Counter(m.get("reply_parent_message_id") for m in self.twitch.sent)
        doubles = {i: n for i, n in counts.items() if n > 1}
        strangers = set(counts) - set(self.ids)
        assert not doubles, f"answered twice: {doubles}"
        assert not strangers, f"replies to lines never pushed: {strangers}"

    async def until_model_answers(self, prefix: str, deadline: float = 30.0) -> str:
        """Push a line every half second until one is answered by the model; its id."""
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        pending: list[str] = []
        while loop.time() < end:
            message_id = f"{prefix}-{len(pending)}"
            pending.append(message_id)
            await self.ask(message_id)
            await asyncio.sleep(0.5)
            for done in pending:
                if any(DEFAULT_ANSWER in text for text in self.replies(done)):
                    return done
        raise AssertionError(f"no model answer within {deadline} s: {[self.replies(i) for i in pending]}")


def saw_outage(layout: Layout, name: str) -> bool:
    return bool(outage_warnings(layout.log(name)))


def still_running(layout: Layout) -> None:
    assert layout.processes.unexpected_exits() == [], layout.post_mortem()


def no_tracebacks(layout: Layout, names: Iterable[str] = BOT_PROCESSES) -> None:
    found = {name: tracebacks(layout.log(name)) for name in names}
    assert not any(found.values()), found


def one_warning_per_outage(layout: Layout, names: Iterable[str], outages: int = 1) -> None:
    """Each loop says its dependency is unreachable once per outage, never once per retry."""
    for name in names:
        warnings = outage_warnings(layout.log(name))
        assert warnings, f"{name} never said its dependency was unreachable:\n{layout.log(name)[-3000:]}"
        keys = Counter(outage_key(w) for w in warnings)
        repeated = {key: n for key, n in keys.items() if n > outages}
        assert not repeated, f"{name} logged an outage more than once: {repeated}\n" + "\n".join(warnings)


async def answers_through(layout: Layout, chat: Chat, database: ProxiedDatabase, worker: str) -> None:
    """The worker started again (a third boot row) answers from the model, and nothing went wrong."""
    await eventually(lambda: count(database.direct_url, BOOTS) >= 3, f"{worker} to start again")
    await chat.until_model_answers(f"{worker}-back")
    await chat.exactly_once()
    still_running(layout)
    no_tracebacks(layout, ("adapters", worker))


@asynccontextmanager
async def layout_on(
    tmp_path: Path,
    redis: PrivateRedis,
    database: ProxiedDatabase,
    model: FakeOpenAI,
    *,
    web: bool = False,
    channels: tuple[str, ...] = (STREAMER[1],),
    env: Mapping[str, str] | None = None,
    wait: bool = True,
) -> AsyncIterator[Layout]:
    async with running_layout(
        tmp_path,
        model=model,
        database_url=database.url,
        check_url=database.direct_url,
        redis_url=redis.url,
        phrases=PHRASES,
        web=web,
        channels=channels,
        wait=wait,
        env={**FAST, **(env or {})},
    ) as layout:
        yield layout


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    with PrivateRedis(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def database() -> Iterator[ProxiedDatabase]:
    with proxied_postgres_database() as db:
        yield db


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


async def test_redis_killed_mid_run(
    tmp_path: Path, redis: PrivateRedis, database: ProxiedDatabase, model: FakeOpenAI
) -> None:
    async with layout_on(tmp_path, redis, database, model) as layout:
        chat = Chat(layout.twitch)
        for i in range(3):
            await chat.ask(f"before-{i}")
        await chat.answered(chat.ids)
        assert all(DEFAULT_ANSWER in chat.replies(i)[0] for i in chat.ids)

        # Redis dies for a few seconds: the adapter answers by itself meanwhile.
        redis.kill()
        during = [f"during-{i}" for i in range(4)]
        for message_id in during:
            await chat.ask(message_id)
            await asyncio.sleep(0.75)
        await chat.answered(during, deadline=DEADLINE + 10)
        assert all(TIMEOUT_PHRASE in chat.replies(i)[0] for i in during), [chat.replies(i) for i in during]
        redis.restart()

        # The model answers again without anyone restarting anything, then steadily.
        await chat.until_model_answers("after")
        steady = [f"steady-{i}" for i in range(3)]
        for message_id in steady:
            await chat.ask(message_id)
        await chat.answered(steady)
        assert all(DEFAULT_ANSWER in chat.replies(i)[0] for i in steady), [chat.replies(i) for i in steady]

        # The change listeners rejoined their group on the new Redis: a phrase edit reaches the workers.
        set_phrases(database.direct_url, {"ask": CHANGED_PHRASE, "ask_error": CHANGED_PHRASE})
        model.set_fault("refuse")
        for attempt in range(20):
            await announce_phrase_change(redis.url)
            await chat.ask(f"changed-{attempt}")
            await chat.answered([f"changed-{attempt}"])
            if CHANGED_PHRASE in chat.replies(f"changed-{attempt}")[0]:
                break
        else:
            raise AssertionError("a phrase change never reached the workers after Redis came back")

        await chat.exactly_once()
        still_running(layout)
        no_tracebacks(layout)
        one_warning_per_outage(layout, BOT_PROCESSES)


async def test_redis_refused_at_start(tmp_path: Path, database: ProxiedDatabase, model: FakeOpenAI) -> None:
    with PrivateRedis(tmp_path / "redis", start=False) as redis:
        async with layout_on(tmp_path, redis, database, model, web=True, wait=False) as layout:
            # Today a worker gives up after 2 s; every process must wait for Redis instead, saying so.
            for name in BOT_PROCESSES:
                await eventually(partial(saw_outage, layout, name), f"{name} to say Redis is down")
            await asyncio.sleep(3)
            still_running(layout)
            redis.start()
            await layout.ready()
            chat = Chat(layout.twitch)
            await chat.until_model_answers("first")
            for i in range(3):
                await chat.ask(f"then-{i}")
            await chat.exactly_once()
            assert all(DEFAULT_ANSWER in chat.replies(f"then-{i}")[0] for i in range(3))
            still_running(layout)
            no_tracebacks(layout, ("web", *BOT_PROCESSES))
            one_warning_per_outage(layout, BOT_PROCESSES)


async def test_worker_killed_while_the_model_answers(
    tmp_path: Path, redis: PrivateRedis, database: ProxiedDatabase, model: FakeOpenAI
) -> None:
    async with layout_on(tmp_path, redis, database, model) as layout:
        processes = layout.processes
        # Only worker-1 reads the layer while the lines arrive, so it is the one holding them.
        assert await processes.terminate("worker-2") == 0, layout.post_mortem()
        model.set_fault("completions_hang")
        chat = Chat(layout.twitch)
        held = [f"held-{i}" for i in range(3)]
        for message_id in held:
            await chat.ask(message_id)
        await eventually(lambda: model.chat_in_flight >= 2, "worker-1 to be waiting on the model")
        await processes.kill("worker-1")
        # The other worker is up and idle; the lines worker-1 took are answered all the same, once.
        await layout.start_worker("worker-2")
        await chat.answered(held, deadline=DEADLINE + 15)
        assert all(TIMEOUT_PHRASE in chat.replies(i)[0] for i in held), [chat.replies(i) for i in held]

        model.clear()
        await answers_through(layout, chat, database, "worker-2")


async def test_all_workers_down(
    tmp_path: Path, redis: PrivateRedis, database: ProxiedDatabase, model: FakeOpenAI
) -> None:
    async with layout_on(tmp_path, redis, database, model) as layout:
        processes = layout.processes
        await processes.kill("worker-1")
        await processes.kill("worker-2")
        chat = Chat(layout.twitch)
        asks = [f"nobody-{i}" for i in range(3)]
        for message_id in asks:
            await chat.ask(message_id)
        await chat.mention("nobody-mention")
        await chat.answered([*asks, "nobody-mention"], deadline=DEADLINE + 15)
        assert all(TIMEOUT_PHRASE in chat.replies(i)[0] for i in asks), [chat.replies(i) for i in asks]
        assert CHILL_PHRASE in chat.replies("nobody-mention")[0], chat.replies("nobody-mention")

        # systemd starts a worker again: the model answers through it.
        await layout.start_worker("worker-1")
        await answers_through(layout, chat, database, "worker-1")


async def test_sigterm_during_a_model_call_with_replies_queued(
    tmp_path: Path, redis: PrivateRedis, database: ProxiedDatabase, model: FakeOpenAI
) -> None:
    env = {
        # One reply per channel per minute where the bot is no moderator: the rest queue up.
        "TWITCH_RATE_LIMIT": "1",
        "TWITCH_RATE_WINDOW": "60",
        "SHUTDOWN_GRACE": "6",
        "LLM_DEADLINE": "8",
        "LLM_TIMEOUT": "8",
        "LLM_FIRST_TOKEN_TIMEOUT": "6",
    }
    channels = (STREAMER[1], OTHER_CHANNEL[1])
    async with layout_on(tmp_path, redis, database, model, channels=channels, env=env) as layout:
        chat = Chat(layout.twitch)
        # The bot is a moderator in otherchan (100 replies per 30 s there), not in streamer.
        await layout.twitch.push(bot_message(OTHER_CHANNEL))
        queued = [f"queued-{i}" for i in range(4)]
        for message_id in queued:
            await chat.ask(message_id)
        await eventually(lambda: model.chat_requests >= len(queued), "the model to answer every queued line")
        await eventually(lambda: layout.twitch.sent, "the first reply the rate limit lets out")
        await asyncio.sleep(1.0)  # the other answers reach the adapter's outbound queue
        assert sum(len(chat.replies(i)) for i in queued) == 1

        # Two answers are being written when SIGTERM comes.
        model.set_fault("slow", delay=3)
        in_flight = ["in-flight-0", "in-flight-1"]
        for message_id in in_flight:
            await chat.ask(message_id, broadcaster=OTHER_CHANNEL)
        await eventually(lambda: model.chat_in_flight >= 2, "both answers to be in flight")
        codes = await layout.processes.stop(BOT_PROCESSES)

        assert codes == [0, 0, 0], layout.post_mortem()
        no_tracebacks(layout)
        # What was in flight is answered by the model and sent within SHUTDOWN_GRACE.
        assert [len(chat.replies(i)) for i in in_flight] == [1, 1], layout.log("adapters")[-3000:]
        assert all(DEFAULT_ANSWER in chat.replies(i)[0] for i in in_flight), layout.log("adapters")[-3000:]
        # What the rate limit kept back is counted, in one line.
        assert sum(len(chat.replies(i)) for i in queued) == 1
        unsent = [
            line
            for line in layout.log("adapters").splitlines()
            if re.search(r"unsent|not sent|left unsent|never sent", line, re.IGNORECASE)
        ]
        assert len(unsent) == 1 and re.search(r"\b3\b", unsent[0]), unsent or layout.log("adapters")[-3000:]


async def test_groups_outlive_their_expiry(
    tmp_path: Path, redis: PrivateRedis, database: ProxiedDatabase, model: FakeOpenAI
) -> None:
    expiry = 3
    async with layout_on(
        tmp_path, redis, database, model, web=True, env={"CHANNEL_GROUP_EXPIRY": str(expiry)}
    ) as layout:
        async with dashboard_socket(layout.port) as dashboard:
            await first_row(dashboard, deadline=30)
            # Well past the expiry: channels would have dropped every member joined only once.
            await asyncio.sleep(expiry * 3)
            while True:  # what was pushed meanwhile is not the proof: drain it
                try:
                    await asyncio.wait_for(dashboard.recv(), 0.05)
                except TimeoutError:
                    break
            pushed = await first_row(dashboard, deadline=20)
        assert pushed["kind"] in ("probe", "call", "tier_event", "boot"), pushed

        # A phrase change announced now (the sender forgets members older than the expiry too).
        set_phrases(database.direct_url, {"ask": CHANGED_PHRASE, "ask_error": CHANGED_PHRASE})
        await announce_phrase_change(redis.url, group_expiry=expiry)
        await asyncio.sleep(1.0)
        model.set_fault("refuse")
        chat = Chat(layout.twitch)
        for i in range(4):
            await chat.ask(f"changed-{i}")
        await chat.exactly_once()
        assert all(CHANGED_PHRASE in chat.replies(f"changed-{i}")[0] for i in range(4)), [
            chat.replies(f"changed-{i}") for i in range(4)
        ]
        still_running(layout)


async def first_row(dashboard: Any, deadline: float) -> dict[str, Any]:
    """The next history row the dashboard's websocket pushes (status frames skipped)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        frame = json.loads(await asyncio.wait_for(dashboard.recv(), max(end - loop.time(), 0.01)))
        if frame.get("kind") != "status":
            return dict(frame)


async def test_postgres_cut_mid_run(
    tmp_path: Path, redis: PrivateRedis, database: ProxiedDatabase, model: FakeOpenAI
) -> None:
    calls = "SELECT count(*) FROM llm_cascadecall"
    async with layout_on(tmp_path, redis, database, model) as layout:
        chat = Chat(layout.twitch)
        for i in range(3):
            await chat.ask(f"before-{i}")
        await chat.answered(chat.ids)
        await eventually(lambda: count(database.direct_url, calls) >= 3, "the first calls in the history")
        written = count(database.direct_url, calls)

        database.proxy.cut()
        cut = [f"cut-{i}" for i in range(4)]
        for message_id in cut:
            await chat.ask(message_id)
            await asyncio.sleep(0.5)
        # Replies go on while the database is away; the model still answers them.
        await chat.answered(cut)
        assert all(DEFAULT_ANSWER in chat.replies(i)[0] for i in cut), [chat.replies(i) for i in cut]
        await asyncio.sleep(2)
        database.proxy.restore()

        # The history waited in memory, and is written once the database is back.
        await eventually(
            lambda: count(database.direct_url, calls) >= written + len(cut),
            "the calls answered during the cut to reach the history",
            deadline=40,
        )
        await chat.exactly_once()
        still_running(layout)
        no_tracebacks(layout)
