"""Supervision: restarts with capped backoff, fatal errors reported once, one platform failing
never silencing the other (real adapters against fake Twitch and Discord)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator

import pytest
from asgiref.sync import sync_to_async

from chatbridge.adapters.errors import AdapterFatal
from chatbridge.adapters.status import AdapterStatus
from chatbridge.adapters.supervisor import Supervisor
from chatbridge.adapters.twitch import TwitchAdapter
from chatbridge.bot import cancel, start_adapters
from chatbridge.models import AdapterState
from tests.adapter_support import eventually, running, running_bot
from tests.fakes import fake_twitch as tw
from tests.fakes.clock import ManualClock
from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_twitch import FakeTwitch, chat_message

pytestmark = pytest.mark.django_db(transaction=True)


class FlakyAdapter:
    """Fails `failures` times with `error`, then runs until cancelled."""

    platform = "twitch"

    def __init__(self, failures: int, error: Exception) -> None:
        self.status = AdapterStatus(self.platform)
        self.failures = failures
        self.error = error
        self.runs = 0
        self.up = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise self.error
        self.up.set()
        await asyncio.Event().wait()

    def secrets(self) -> tuple[str, ...]:
        return ("hunter2-secret",)


async def state(platform: str) -> AdapterState | None:
    return await sync_to_async(AdapterState.objects.filter(platform=platform).first)()


def states() -> dict[str, str]:
    return dict(AdapterState.objects.values_list("platform", "state"))


async def wait_for_states(expected: dict[str, str], deadline: float = 15.0) -> None:
    """Poll the rows the dashboard reads until they say `expected`."""
    seen: dict[str, str] = {}
    for _ in range(int(deadline / 0.02)):
        seen = await sync_to_async(states)()
        if seen == expected:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"adapter states {seen}, expected {expected}")


async def test_a_crashing_adapter_restarts_with_growing_capped_delays() -> None:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    adapter = FlakyAdapter(6, ConnectionError("reset by peer (token hunter2-secret)"))
    supervisor = Supervisor(adapter, first_delay=1.0, max_delay=8.0, sleep=sleep)
    task = asyncio.create_task(supervisor.run())
    await asyncio.wait_for(adapter.up.wait(), 10)
    recorded = await state("twitch")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert adapter.runs == 7
    caps = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert len(delays) == 6
    assert all(0.8 * cap <= delay <= cap for delay, cap in zip(delays, caps, strict=True))
    assert recorded is not None and recorded.state == "reconnecting"
    assert "reset by peer" in recorded.last_error and "hunter2-secret" not in recorded.last_error
    stopped = await state("twitch")
    assert stopped is not None and stopped.state == "stopped"


async def test_an_adapter_error_is_stored_through_the_projects_one_redaction() -> None:
    async def sleep(seconds: float) -> None:
        return None

    # Not one of the adapter's own secrets: a key or bearer token a library or proxy echoed.
    key = "sk-proj-" + "Zx9" * 16
    adapter = FlakyAdapter(1, ConnectionError(f"proxy said: Authorization: Bearer {key}"))
    task = asyncio.create_task(Supervisor(adapter, first_delay=0.01, sleep=sleep).run())
    await asyncio.wait_for(adapter.up.wait(), 10)
    recorded = await state("twitch")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert recorded is not None and "proxy said" in recorded.last_error
    assert key not in recorded.last_error and key[:20] not in recorded.last_error


async def test_a_long_healthy_run_starts_the_backoff_over() -> None:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    # Each reading of the clock is 1,000 s after the last: every run "lasted" long enough.
    readings = itertools.count(0.0, 1_000.0)
    adapter = FlakyAdapter(3, ConnectionError("dropped"))
    supervisor = Supervisor(adapter, healthy_after=60, sleep=sleep, monotonic=lambda: next(readings))
    task = asyncio.create_task(supervisor.run())
    await asyncio.wait_for(adapter.up.wait(), 10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert len(delays) == 3 and all(delay <= 1.0 for delay in delays)


async def test_a_fatal_error_is_reported_once_and_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    async def sleep(seconds: float) -> None:
        raise AssertionError("a fatal error must not be retried")

    adapter = FlakyAdapter(99, AdapterFatal("Discord refused DISCORD_TOKEN (token hunter2-secret)"))
    with caplog.at_level(logging.ERROR, logger="chatbridge"):
        await asyncio.wait_for(Supervisor(adapter, sleep=sleep).run(), 10)

    assert adapter.runs == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "DISCORD_TOKEN" in errors[0].getMessage()
    assert "hunter2-secret" not in caplog.text
    failed = await state("twitch")
    assert failed is not None and failed.state == "failed" and "DISCORD_TOKEN" in failed.last_error


@pytest.fixture
async def twitch() -> AsyncIterator[FakeTwitch]:
    fake = await FakeTwitch().start()
    yield fake
    await fake.close()


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    fake = await FakeDiscord().start()
    yield fake
    await fake.close()


async def test_discord_refusing_login_leaves_twitch_answering(
    twitch: FakeTwitch,
    discord: FakeDiscord,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad_token = "revoked.discord.token"
    for name, value in {**twitch.env(), **discord.env(token=bad_token)}.items():
        monkeypatch.setenv(name, value)
    async with running_bot():
        with caplog.at_level(logging.INFO, logger="chatbridge"):
            tasks = start_adapters({"twitch", "discord", "web"})
            try:
                await wait_for_states({"twitch": "connected", "discord": "failed"})
                notification = chat_message("!ask toujours là ?")
                await twitch.push(notification)
                asked = notification["payload"]["event"]["message_id"]
                await eventually(lambda: twitch.replies_to(asked), what="Twitch's reply")
            finally:
                await cancel(tasks)

    discord_state = await state("discord")
    assert discord_state is not None
    assert discord_state.state == "failed"
    assert "DISCORD_TOKEN" in discord_state.last_error and bad_token not in discord_state.last_error
    assert discord.requests.count("GET /api/v10/users/@me") == 1  # not retried
    reports = [r for r in caplog.records if "Discord adapter stopped" in r.getMessage()]
    assert len(reports) == 1
    assert bad_token not in caplog.text


async def test_twitch_reconnects_after_the_websocket_drops_and_answers_again(twitch: FakeTwitch) -> None:
    async with running_bot() as layer:
        clock = ManualClock()
        adapter = TwitchAdapter(twitch.config(), layer=layer, clock=clock)
        async with running(adapter):
            before = chat_message("!ask avant ?")
            await twitch.push(before)
            first = before["payload"]["event"]["message_id"]
            await eventually(lambda: twitch.replies_to(first), what="a reply")

            await twitch.drop_websockets()
            clock.advance(60)  # past the channel's cooldown
            await eventually(
                lambda: any(s["transport"]["session_id"] == "session-2" for s in twitch.subscriptions),
                what="the resubscription on a new websocket",
            )
            after = chat_message("!ask après ?", chatter=("4145995", "viewer33"))
            await twitch.push(after)
            second = after["payload"]["event"]["message_id"]
            await eventually(lambda: twitch.replies_to(second), what="a reply after the reconnection")

    assert len(twitch.sockets) == 2
    assert len(twitch.sent) == 2
    assert twitch.subscriptions[-1]["condition"]["broadcaster_user_id"] == tw.STREAMER[0]


async def test_a_twitch_outage_at_start_is_retried_without_leaking_secrets(twitch: FakeTwitch) -> None:
    twitch.token_outages = 2
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        errors.append((await state("twitch")).last_error)  # type: ignore[union-attr]

    errors: list[str] = []
    async with running_bot() as layer:
        adapter = TwitchAdapter(twitch.config(), layer=layer, clock=ManualClock())
        task = asyncio.create_task(Supervisor(adapter, sleep=sleep).run())
        try:
            await asyncio.wait_for(adapter.connected.wait(), 15)
            asked = chat_message("!ask tu es revenu ?")
            await twitch.push(asked)
            asked_id = asked["payload"]["event"]["message_id"]
            await eventually(lambda: twitch.replies_to(asked_id), what="a reply after two failed starts")
        finally:
            await cancel([task])

    assert len(delays) == 2
    assert errors == ["ConnectionError: Twitch answered HTTP 500 on oauth2/token"] * 2
