"""The history recorder: queued off the hot path, written in batches, pushed to the dashboard group."""

from __future__ import annotations

from datetime import datetime

import pytest
from channels.layers import InMemoryChannelLayer

from llm.history import DASHBOARD_GROUP, HistoryRecorder
from llm.models import BootDetection, CascadeCall, Probe, TierEvent
from llm.results import CascadeResult, ProbeResult
from tests.llm_helpers import eventually, rows

pytestmark = pytest.mark.django_db(transaction=True)

PROBE = ProbeResult(tier="local", url="http://127.0.0.1:1/v1", ok=False, latency_ms=3.5, error="ConnectError")
FAILED = CascadeResult(None, "fallback", 12.5, {"local": "ReadTimeout"}, timed_out=True, attempted=True)


async def test_recording_only_queues_and_flush_writes_every_kind() -> None:
    recorder = HistoryRecorder(use_default_layer=False)
    recorder.record_probe(PROBE, "models")
    recorder.record_call(platform="twitch", intent="ask", result=FAILED, channel="streamer")
    recorder.record_tier_event("local", "down", "ConnectError", "refused")
    recorder.record_boot(mode="auto", found=False, endpoint="http://127.0.0.1:1/v1", error="ConnectError")

    assert recorder.pending == 4
    assert await rows(Probe) == []

    await recorder.flush()

    assert recorder.pending == 0
    [probe] = await rows(Probe)
    assert (probe.tier, probe.kind, probe.ok, probe.latency_ms, probe.error) == (
        "local",
        "models",
        False,
        3.5,
        "ConnectError",
    )
    [call] = await rows(CascadeCall)
    assert (call.platform, call.channel, call.intent, call.source, call.timed_out, call.errors) == (
        "twitch",
        "streamer",
        "ask",
        "fallback",
        True,
        {"local": "ReadTimeout"},
    )
    [event] = await rows(TierEvent)
    assert (event.tier, event.state, event.error, event.detail) == (
        "local",
        "down",
        "ConnectError",
        "refused",
    )
    [boot] = await rows(BootDetection)
    assert (boot.found, boot.error) == (False, "ConnectError")


async def test_each_saved_batch_is_pushed_to_the_dashboard_group() -> None:
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add(DASHBOARD_GROUP, channel)
    recorder = HistoryRecorder(layer=layer)

    recorder.record_call(platform="console", intent="chill", result=FAILED)
    recorder.record_probe(PROBE)
    await recorder.flush()

    message = await layer.receive(channel)
    assert message["type"] == "history.batch"
    first, second = message["rows"]
    assert (first["kind"], second["kind"]) == ("call", "probe")
    assert first["data"]["source"] == "fallback"
    assert first["data"]["errors"] == {"local": "ReadTimeout"}
    assert isinstance(first["data"]["id"], int)
    assert datetime.fromisoformat(first["data"]["created"])
    assert second["data"]["error"] == "ConnectError"


async def test_the_background_writer_saves_without_being_asked() -> None:
    recorder = HistoryRecorder(use_default_layer=False)
    await recorder.start()
    recorder.record_tier_event("openai", "cooling", "RateLimited")

    await eventually(lambda: rows(TierEvent), within=3.0)
    await recorder.stop()

    assert recorder.written == 1


async def test_a_full_queue_drops_and_counts_instead_of_growing() -> None:
    recorder = HistoryRecorder(use_default_layer=False, max_queue=3)

    for _ in range(5):
        recorder.record_probe(PROBE)

    assert (recorder.pending, recorder.dropped) == (3, 2)
    await recorder.flush()
    assert len(await rows(Probe)) == 3


async def test_chat_text_is_kept_out_unless_asked() -> None:
    for store in (False, True):
        recorder = HistoryRecorder(use_default_layer=False, store_chat=store)
        recorder.record_call(platform="web", intent="ask", result=FAILED, user="bob", text="secret question")
        await recorder.flush()

    kept_out, kept = await rows(CascadeCall)
    assert (kept_out.user, kept_out.text) == ("", "")
    assert (kept.user, kept.text) == ("bob", "secret question")


async def test_stop_writes_what_is_left() -> None:
    recorder = HistoryRecorder(use_default_layer=False)
    await recorder.start()
    recorder.record_probe(PROBE)

    await recorder.stop()

    assert len(await rows(Probe)) == 1
