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
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets

from tests.fakes.fake_twitch import STREAMER, chat_message
from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI
from tests.layout import (
    Layout,
    announce_phrase_change,
    count,
    eventually,
    login,
    running_layout,
    set_phrases,
)
from tests.services import fresh_postgres_database, redis_url

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

MOD = ["moderator"]  # moderators skip the channel cooldown, so every line is answered
UNIQUE_PHRASE = "Phrase posée par le test multi-process, reçue via Redis 📡"


@pytest.fixture
async def layout(tmp_path: Path) -> AsyncIterator[Layout]:
    redis = redis_url()
    with fresh_postgres_database() as database_url, FakeOpenAI() as model:
        async with running_layout(
            tmp_path, model=model, database_url=database_url, redis_url=redis
        ) as running:
            yield running


async def test_one_reply_per_message_across_processes(layout: Layout) -> None:
    twitch, model = layout.twitch, layout.model
    port, database_url = layout.port, layout.database_url

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
    set_phrases(database_url, {"ask": UNIQUE_PHRASE, "ask_error": UNIQUE_PHRASE})
    await announce_phrase_change(layout.redis_url)
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
    web, *bots = await layout.stop()
    assert web == -signal.SIGTERM
    assert bots == [0, 0, 0]
