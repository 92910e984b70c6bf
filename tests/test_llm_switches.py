"""Live switches: the admin's row over the environment, watched within seconds, applied by the
LLM service (pause, disable, auto/enabled), the handler and the adapters' guard."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer
from django.contrib.auth.models import User
from django.test import Client

from chatbridge.adapters.outbound import Outgoing
from chatbridge.adapters.relay import Relay
from chatbridge.adapters.status import AdapterStatus
from chatbridge.channel_settings import ChannelSettingsCache
from chatbridge.config import RateLimit
from chatbridge.cooldowns import Cooldowns
from chatbridge.events import ChatEvent
from chatbridge.handler import Handler
from chatbridge.models import ChannelSettings
from fallbacks.services import MINIMAL_REPLY, SILENT_REPLY
from llm.cascade.config import LLMConfig
from llm.cascade.service import LLMService
from llm.cascade.switches import Overrides, SwitchWatcher, effective, live_switches, read_overrides
from llm.models import BootDetection, LiveSwitches, Probe, TierEvent
from serdabot.broadcast import listen
from tests.conftest import disabled_llm
from tests.fakes.openai_server import FakeOpenAI
from tests.llm_helpers import PROBE_INTERVAL, TEST_KEY, ask, eventually, llm_config, recorder, rows
from tests.proxied_database import database_away
from tests.subprocesses import closed_endpoint

pytestmark = pytest.mark.django_db(transaction=True)

# Short enough that a test waits little for a change; the service's own default is SWITCH_POLL.
POLL = 0.05
# How long a change may take to be applied here: many polls, for a loaded CI machine.
APPLIED_WITHIN = 5.0


@pytest.fixture(autouse=True)
def process_switches_untouched() -> Iterator[None]:
    # The process-wide watcher outlives a test: none of these may leave it paused for the next.
    before = live_switches.current
    yield
    live_switches.current = before


@pytest.fixture
def local() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def save_switches(**values: Any) -> None:
    # The one row, as the admin saves it (a post_save announces it to every process).
    row = LiveSwitches.objects.order_by("pk").first() or LiveSwitches()
    for name, value in values.items():
        setattr(row, name, value)
    row.save()


async def switch(**values: Any) -> None:
    await sync_to_async(save_switches)(**values)


def watched(config: LLMConfig) -> LLMService:
    """A service with a watcher of its own that reads the row every POLL seconds."""
    return LLMService(config, recorder(), switches=SwitchWatcher(every=POLL))


async def events(**filters: Any) -> list[tuple[str, str, str]]:
    return [(e.tier, e.state, e.detail) for e in await rows(TierEvent, **filters)]


async def recorded(llm: LLMService, tier: str, state: str) -> bool:
    """Whether the service has written a `state` event for `tier` (so what came with it is done)."""
    await llm.recorder.flush()
    return bool(await rows(TierEvent, tier=tier, state=state))


# -- the values in force ----------------------------------------------------------------


def test_without_a_row_everything_comes_from_the_environment() -> None:
    config = LLMConfig(mode="enabled", fallback_mode="silent")

    now = effective(config, read_overrides())

    assert (now.llm_mode, now.paused, now.fallback_mode, now.off, now.why) == (
        "enabled",
        False,
        "silent",
        "",
        "",
    )


def test_the_admins_choices_win_over_the_environment() -> None:
    save_switches(llm_mode="auto", fallback_mode="minimal")

    now = effective(LLMConfig(mode="disabled", fallback_mode="fun"), read_overrides())

    assert (now.llm_mode, now.fallback_mode, now.off) == ("auto", "minimal", "")


@pytest.mark.parametrize(
    ("env_mode", "row", "off", "why"),
    [
        ("disabled", {}, "disabled", "LLM_MODE=disabled"),
        ("auto", {"llm_mode": "disabled"}, "disabled", "switched off in the admin"),
        ("auto", {"paused": True}, "paused", "paused from the admin"),
        # Unpausing would not bring a disabled LLM back: disabled is what is shown.
        ("disabled", {"paused": True}, "disabled", "LLM_MODE=disabled"),
    ],
)
def test_why_no_model_is_called(env_mode: str, row: dict[str, Any], off: str, why: str) -> None:
    now = effective(LLMConfig(mode=env_mode), Overrides(**row))

    assert (now.off, now.why) == (off, why)


def test_a_value_the_choices_do_not_know_follows_the_environment() -> None:
    save_switches()
    LiveSwitches.objects.update(llm_mode="sometimes", fallback_mode="loud")

    assert read_overrides() == Overrides()


# -- the watcher ------------------------------------------------------------------------


async def test_the_watcher_picks_a_change_up_within_its_poll() -> None:
    watcher = SwitchWatcher(every=POLL)
    heard: list[Overrides] = []

    async def listener(overrides: Overrides) -> None:
        heard.append(overrides)

    watcher.listeners.append(listener)
    watcher.start()
    try:
        await switch(paused=True, fallback_mode="minimal")
        await eventually(lambda: heard, within=APPLIED_WITHIN)
    finally:
        await watcher.stop()

    assert heard == [Overrides(paused=True, fallback_mode="minimal")]
    assert watcher.fallback_mode("fun") == "minimal"


async def test_a_change_notice_is_applied_without_waiting_for_the_poll() -> None:
    # Polling once a minute: only the broadcast (llm/signals.py -> serdabot.broadcast) can be quick.
    reads: list[Overrides] = []

    def read() -> Overrides:
        reads.append(read_overrides())
        return reads[-1]

    watcher = SwitchWatcher(every=60.0, read=read)
    heard: list[Overrides] = []

    async def listener(overrides: Overrides) -> None:
        heard.append(overrides)

    async def saved_and_heard() -> bool:
        # Saved again until the change listener has joined the group: each save is announced.
        await switch(paused=True)
        return bool(heard)

    watcher.listeners.append(listener)
    listener_task = asyncio.create_task(listen({"switches": watcher.refresh}))
    watcher.start()
    try:
        await eventually(lambda: reads, within=APPLIED_WITHIN)  # its first read, before the change
        await eventually(saved_and_heard, within=APPLIED_WITHIN, every=0.1)
    finally:
        listener_task.cancel()
        await asyncio.gather(listener_task, return_exceptions=True)
        await watcher.stop()

    assert heard == [Overrides(paused=True)]


async def test_the_watcher_keeps_the_last_values_through_a_database_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await switch(fallback_mode="silent")
    watcher = SwitchWatcher(every=POLL)
    watcher.start()
    caplog.set_level(logging.INFO, "llm.switches")

    def outage_lines(words: str) -> list[str]:
        return [
            r.getMessage() for r in caplog.records if r.name == "llm.switches" and words in r.getMessage()
        ]

    try:
        await eventually(lambda: watcher.current.fallback_mode == "silent", within=APPLIED_WITHIN)
        async with database_away():
            await eventually(lambda: watcher.outage.failures >= 3, within=APPLIED_WITHIN)
            assert watcher.fallback_mode("fun") == "silent"  # the last values stay in force
        await switch(fallback_mode="minimal")
        await eventually(lambda: watcher.current.fallback_mode == "minimal", within=APPLIED_WITHIN)
        assert watcher._task is not None and not watcher._task.done()
    finally:
        await watcher.stop()

    assert len(outage_lines("cannot reach")) == 1
    assert len(outage_lines("is back after")) == 1


async def test_a_read_that_fails_for_a_bug_never_ends_the_watcher(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def broken_then_fine() -> Overrides:
        calls.append(1)
        if len(calls) <= 3:
            raise RuntimeError("a bug")
        return Overrides(paused=True)

    watcher = SwitchWatcher(every=POLL, read=broken_then_fine)
    watcher.start()
    try:
        await eventually(lambda: watcher.current.paused, within=APPLIED_WITHIN)
    finally:
        await watcher.stop()

    tracebacks = [r for r in caplog.records if r.name == "llm.switches" and r.exc_info]
    assert len(tracebacks) == 1


async def test_the_watcher_stops_when_its_last_user_does() -> None:
    watcher = SwitchWatcher(every=POLL)
    watcher.start()  # the LLM service
    watcher.start()  # an adapter's relay in the same process
    task = watcher._task
    assert task is not None

    await watcher.stop()
    assert not task.done()
    await watcher.stop()

    assert task.done() and watcher._task is None
    await watcher.stop()  # once more: nothing to stop, nothing raised


# -- the LLM service ----------------------------------------------------------------------


async def test_a_pause_stops_every_call_and_probe_until_unpaused(local: FakeOpenAI) -> None:
    llm = watched(llm_config(local.url, probe_interval=PROBE_INTERVAL))
    await llm.start(process="test")
    try:
        assert (await ask(llm)).source == "local"
        # Probes run at this interval, so a window of the same length without one means something.
        probes = local.probe_requests
        await eventually(lambda: local.probe_requests >= probes + 2, within=APPLIED_WITHIN)

        await switch(paused=True)
        await eventually(lambda: recorded(llm, "local", "paused"), within=APPLIED_WITHIN)
        assert llm.states() == {"local": "paused", "openai": "not_configured"}
        seen = local.total_requests
        paused = await ask(llm)
        await asyncio.sleep(5 * PROBE_INTERVAL)  # five probe intervals: a GPU paused for a game gets none
        assert (paused.source, paused.attempted, paused.tiers) == ("fallback", False, ())
        assert local.total_requests == seen

        await switch(paused=False)
        await eventually(lambda: llm.states()["local"] == "up" and llm.cascade.tiers, within=APPLIED_WITHIN)
        assert (await ask(llm)).source == "local"
        probes = local.probe_requests
        await eventually(lambda: local.probe_requests > probes, within=APPLIED_WITHIN)
    finally:
        await llm.stop()

    assert [e for e in await events() if e[0] == "local"] == [
        ("local", "up", "at start"),
        ("local", "paused", "paused from the admin"),
        ("local", "up", "unpaused in the admin"),
    ]
    assert llm.switches.listeners == [] and llm.switches._task is None  # stopped with the service


async def test_paused_at_start_the_llm_gets_no_request_at_all(local: FakeOpenAI) -> None:
    await switch(paused=True)
    llm = watched(llm_config(local.url, probe_interval=PROBE_INTERVAL))
    detection = await llm.start(process="test")
    try:
        result = await ask(llm)
        await asyncio.sleep(3 * PROBE_INTERVAL)  # probes would have run by now
    finally:
        await llm.stop()

    assert detection.skipped and result.source == "fallback"
    assert local.total_requests == 0
    [boot] = await rows(BootDetection)
    assert (boot.mode, boot.found) == ("paused", False)
    assert await events() == [
        ("local", "paused", "at start: paused from the admin"),
        ("openai", "not_configured", "at start"),
    ]


async def test_the_admin_switches_on_an_llm_the_environment_disabled_and_off_again(
    local: FakeOpenAI, openai: FakeOpenAI
) -> None:
    llm = watched(llm_config(local.url, openai.url, mode="disabled", probe_interval=60.0))
    await llm.start(process="test")
    try:
        assert llm.states() == {"local": "disabled", "openai": "disabled"}
        assert local.total_requests == openai.total_requests == 0

        await switch(llm_mode="enabled")
        await eventually(lambda: recorded(llm, "local", "up"), within=APPLIED_WITHIN)
        assert llm.states() == {"local": "up", "openai": "up"}
        assert (await ask(llm)).source == "local"

        await switch(llm_mode="")  # back to LLM_MODE, which says disabled
        await eventually(lambda: not llm.cascade.tiers, within=APPLIED_WITHIN)
        assert (await ask(llm)).source == "fallback"
        await switch(llm_mode="disabled")
        await eventually(lambda: llm.live.why == "switched off in the admin", within=APPLIED_WITHIN)
    finally:
        await llm.stop()

    assert [e for e in await events() if e[0] == "local"] == [
        ("local", "disabled", "at start: LLM_MODE=disabled"),
        ("local", "up", "switched on in the admin"),
        ("local", "disabled", "LLM_MODE=disabled"),
        ("local", "disabled", "switched off in the admin"),
    ]
    assert ("openai", "up", "switched on in the admin") in await events()


async def test_switched_to_enabled_a_local_tier_known_down_is_tried_again(local: FakeOpenAI) -> None:
    # auto, and nothing usable at boot: the breaker opens for a full minute.
    local.set_fault("http500")
    llm = watched(llm_config(local.url, probe_interval=60.0, breaker_cooldown=60.0))
    await llm.start(process="test")
    try:
        local.clear()
        skipped = await ask(llm)
        assert (skipped.source, skipped.errors) == ("fallback", {"local": "BreakerOpen"})

        await switch(llm_mode="enabled")

        async def answered_by_local() -> bool:
            return (await ask(llm)).source == "local"

        await eventually(answered_by_local, within=APPLIED_WITHIN)
    finally:
        await llm.stop()

    # The trial message brought it back: no "up" before an answer proved it.
    local_events = [(e[1], e[2]) for e in await events() if e[0] == "local"]
    assert local_events[0][0] == "down" and local_events[-1] == ("up", "answered")


async def test_switched_to_auto_a_local_llm_not_found_is_skipped_at_once() -> None:
    # enabled: the breaker stays closed at boot, chat would try the absent LLM.
    llm = watched(llm_config(closed_endpoint(), mode="enabled", probe_interval=60.0))
    await llm.start(process="test")
    try:
        assert llm.states()["local"] == "up"

        await switch(llm_mode="auto")
        await eventually(lambda: llm.states()["local"] == "down", within=APPLIED_WITHIN)
        result = await ask(llm)
    finally:
        await llm.stop()

    assert (result.errors, result.attempted) == ({"local": "BreakerOpen"}, False)
    assert [(p.kind, p.ok) for p in await rows(Probe)][-1] == ("models", False)
    assert ("local", "down") in [(e[0], e[1]) for e in await events()]


# -- the handler and the adapters' guard --------------------------------------------------


def chat_event(text: str = "!ask c'est quoi un GPU ?") -> ChatEvent:
    return ChatEvent(
        platform="twitch",
        channel="streamer",
        user="viewer",
        text=text,
        message_id="msg-1",
        user_id="id-viewer",
        channel_id="1001",
    )


async def test_the_handler_answers_in_the_live_fallback_mode(warm_phrases: None) -> None:
    watcher = SwitchWatcher()
    channels = ChannelSettingsCache()
    handler = Handler(disabled_llm(), fallback_mode="fun", switches=watcher, channel_settings=channels)

    watcher.current = Overrides(fallback_mode="minimal")  # what the watcher read last
    minimal = await handler.handle(chat_event())
    await sync_to_async(ChannelSettings.objects.create)(
        platform="twitch", channel="streamer", fallback_mode="silent"
    )
    await sync_to_async(channels.load)()
    channel_wins = await handler.handle(chat_event())
    watcher.current = Overrides()
    await sync_to_async(ChannelSettings.objects.all().delete)()
    await sync_to_async(channels.load)()
    environment = await handler.handle(chat_event())

    assert minimal is not None and minimal.text == f"@viewer {MINIMAL_REPLY}"
    assert channel_wins is not None and channel_wins.text == f"@viewer {SILENT_REPLY}"
    assert environment is not None and environment.text not in (
        f"@viewer {MINIMAL_REPLY}",
        f"@viewer {SILENT_REPLY}",
    )


async def test_the_adapters_guard_answers_in_the_fallback_mode_the_admin_set(warm_phrases: None) -> None:
    # An adapter-only process has no LLM service: its relay watches the switches itself.
    await switch(fallback_mode="minimal")
    sent: list[Outgoing] = []

    async def send(message: Outgoing) -> None:
        sent.append(message)

    channels = ChannelSettingsCache()
    relay = Relay(
        "twitch",
        send=send,
        rate=lambda channel: RateLimit(100, 30.0),
        status=AdapterStatus("twitch"),
        layer=InMemoryChannelLayer(),
        settings=channels,
        cooldowns=Cooldowns(),
        bot_names=("serdabot",),
        guard_after=0.2,  # no worker in this test: the guard answers
        fallback_mode="fun",
        switches=SwitchWatcher(every=POLL),
    )
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: relay.switches.current.fallback_mode == "minimal", within=APPLIED_WITHIN)
        assert await relay.incoming(chat_event())
        await eventually(lambda: sent, within=APPLIED_WITHIN)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await relay.close()

    assert [m.text for m in sent] == [f"@viewer {MINIMAL_REPLY}"]
    assert relay.switches._task is None  # the relay's end stopped its watching


# -- the admin ----------------------------------------------------------------------------


@pytest.fixture
def streamer(client: Client) -> Client:
    user = User.objects.create_superuser("streamer", "s@example.com", "a-long-test-password-42")
    client.force_login(user)
    return client


def test_the_admin_shows_the_environments_values_and_never_a_secret(
    streamer: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_MODE", "enabled")
    monkeypatch.setenv("FALLBACK_MODE", "silent")
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)

    page = streamer.get("/admin/llm/liveswitches/add/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "LLM_MODE (enabled in this process's environment)" in text
    assert "FALLBACK_MODE (silent in this process's environment)" in text
    assert "LLM: enabled (mode from LLM_MODE)" in text
    assert TEST_KEY not in text


def test_the_admin_keeps_one_row_that_cannot_be_deleted(streamer: Client) -> None:
    added = streamer.post(
        "/admin/llm/liveswitches/add/", {"llm_mode": "", "paused": "on", "fallback_mode": "minimal"}
    )
    assert added.status_code == 302, added.content.decode()
    row = LiveSwitches.objects.get()

    assert streamer.get("/admin/llm/liveswitches/add/").status_code == 403
    assert streamer.get(f"/admin/llm/liveswitches/{row.pk}/delete/").status_code == 403
    changelist = streamer.get("/admin/llm/liveswitches/").content.decode()
    assert "paused (paused from the admin)" in changelist
    assert (row.paused, row.fallback_mode) == (True, "minimal")
