"""The history recorder: queued off the hot path, written in batches, pushed to the dashboard group."""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime
from pathlib import Path

import pytest
from channels.layers import InMemoryChannelLayer

from llm.cascade.results import CascadeResult, ProbeResult
from llm.history.recorder import DASHBOARD_GROUP, HistoryRecorder
from llm.models import BootDetection, CascadeCall, Probe, TierEvent, Usage
from serdabot import process
from serdabot.database import DatabaseFile
from tests.llm_helpers import eventually, rows
from tests.proxied_database import database_through_a_proxy
from tests.services import postgres_pass_only

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


# -- what a full queue, a bad row or a dead database cost --------------------------------


def record_flap(recorder: HistoryRecorder, tier: str, states: list[str]) -> None:
    for state in states:
        recorder.record_tier_event(tier, state, "ConnectError" if state == "down" else "")


async def test_state_changes_are_never_dropped_for_queue_space() -> None:
    recorder = HistoryRecorder(use_default_layer=False, max_queue=3)

    for _ in range(5):
        recorder.record_probe(PROBE)
        record_flap(recorder, "local", ["down", "up"])
    recorder.record_boot(mode="auto", found=True, endpoint="http://127.0.0.1:1/v1")

    assert (recorder.pending, recorder.dropped) == (3 + 11, 2)
    await recorder.flush()
    assert len(await rows(Probe)) == 3
    assert [event.state for event in await rows(TierEvent)] == ["down", "up"] * 5
    assert len(await rows(BootDetection)) == 1


async def test_past_their_own_bound_state_changes_coalesce_and_each_tier_keeps_its_latest() -> None:
    recorder = HistoryRecorder(use_default_layer=False, max_state_queue=4)

    record_flap(recorder, "openai", ["cooling"])
    record_flap(recorder, "local", ["down", "up", "down", "up", "down"])
    record_flap(recorder, "openai", ["up"])

    assert (recorder.pending, recorder.dropped, recorder.coalesced) == (4, 0, 3)
    await recorder.flush()
    # The oldest superseded changes went: adjacent incidents merged, every tier's latest state kept.
    assert [(event.tier, event.state) for event in await rows(TierEvent)] == [
        ("local", "down"),
        ("local", "up"),
        ("local", "down"),
        ("openai", "up"),
    ]


async def test_lone_surrogates_and_nul_are_cleaned_when_recorded() -> None:
    recorder = HistoryRecorder(use_default_layer=False, store_chat=True)

    recorder.record_call(
        platform="twitch", intent="ask", result=FAILED, user="b\ud800ob", text="a\udfffb\x00c"
    )
    recorder.record_probe(
        ProbeResult(tier="local", url="u", ok=False, latency_ms=1.0, error="E", detail="model \ud83d")
    )
    assert await recorder.flush()

    [call] = await rows(CascadeCall)
    assert (call.user, call.text) == ("b\ufffdob", "a\ufffdbc")
    [probe] = await rows(Probe)
    assert probe.detail == "model \ufffd"
    assert recorder.dropped == 0


def poisoned_call() -> CascadeCall:
    # Built by hand, past record_call's cleaning: a value no driver can encode.
    return CascadeCall(platform="twitch", intent="ask", source="fallback", latency_ms=1.0, text="bad \ud800")


async def test_a_poisoned_row_loses_only_itself(caplog: pytest.LogCaptureFixture) -> None:
    recorder = HistoryRecorder(use_default_layer=False, store_chat=True)
    recorder.record_probe(PROBE)
    recorder._put(poisoned_call())
    recorder.record_call(platform="twitch", intent="ask", result=FAILED, text="fine")
    recorder._put(Usage(tier="openai", model="m", prompt_tokens=-1))  # breaks a CHECK constraint
    recorder._put(poisoned_call())
    recorder.record_tier_event("local", "down", "ConnectError")

    with caplog.at_level(logging.WARNING, logger="llm.history"):
        assert await recorder.flush()

    assert len(await rows(Probe)) == 1
    [call] = await rows(CascadeCall)
    assert call.text == "fine"
    assert len(await rows(TierEvent)) == 1
    assert await rows(Usage) == []
    assert (recorder.written, recorder.rejected, recorder.dropped, recorder.pending) == (3, 3, 3, 0)
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    # Once per kind of row and error: two bad calls, one line.
    assert len(refusals) == 2
    assert any("call row" in line and "UnicodeEncodeError" in line for line in refusals)
    assert any("usage row" in line and "IntegrityError" in line for line in refusals)


async def test_every_row_names_the_process_that_wrote_it() -> None:
    process.set_role("worker")
    try:
        recorder = HistoryRecorder(use_default_layer=False)
        recorder.record_probe(PROBE)
        recorder.record_boot(mode="auto", found=False, endpoint="http://127.0.0.1:1/v1")
        await recorder.flush()
    finally:
        process.reset()

    expected = (socket.gethostname(), os.getpid(), "worker")
    for row in [*await rows(Probe), *await rows(BootDetection)]:
        assert (row.host, row.pid, row.role) == expected


@pytest.mark.services
async def test_a_poisoned_row_on_postgresql_loses_only_itself() -> None:
    postgres_pass_only()
    recorder = HistoryRecorder(use_default_layer=False, store_chat=True)
    recorder.record_call(platform="twitch", intent="ask", result=FAILED, text="before")
    recorder._put(poisoned_call())
    recorder._put(
        CascadeCall(platform="twitch", intent="ask", source="fallback", latency_ms=1.0, text="nul \x00")
    )
    recorder.record_call(platform="twitch", intent="ask", result=FAILED, text="after \ud800")

    assert await recorder.flush()

    assert [call.text for call in await rows(CascadeCall)] == ["before", "after \ufffd"]
    assert recorder.rejected == 2


@pytest.mark.services
async def test_rows_wait_through_a_database_outage_and_are_written_when_it_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with database_through_a_proxy() as proxy:
        recorder = HistoryRecorder(use_default_layer=False, retry_cap=0.3)
        await recorder.start()
        recorder.record_probe(PROBE)
        await eventually(lambda: recorder.written == 1, within=5.0)
        assert proxy.connections >= 1  # it really went through the proxy

        with caplog.at_level(logging.WARNING, logger="llm.history"):
            proxy.cut()
            for _ in range(30):
                recorder.record_probe(PROBE)
            record_flap(recorder, "local", ["down", "up", "down"])
            await eventually(lambda: recorder.outage.failures >= 3, within=10.0)
            assert recorder.pending == 33  # waiting, none dropped
            proxy.restore()
            await eventually(lambda: recorder.pending == 0 and not recorder.outage.ongoing, within=10.0)
            await recorder.stop()

    assert (recorder.written, recorder.dropped) == (34, 0)
    assert len(await rows(Probe)) == 31
    assert [event.state for event in await rows(TierEvent)] == ["down", "up", "down"]
    lines = [r.getMessage() for r in caplog.records]
    assert len([line for line in lines if "cannot reach" in line or "unreachable" in line]) == 1
    assert 'PostgreSQL database "' in lines[0]
    assert len([line for line in lines if "is back after" in line]) == 1
    assert "Traceback" not in caplog.text


@pytest.mark.services
async def test_stopping_while_the_database_is_unreachable_counts_the_rows_lost_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with database_through_a_proxy() as proxy:
        recorder = HistoryRecorder(use_default_layer=False)
        await recorder.start()
        proxy.cut()
        record_flap(recorder, "local", ["down"])
        recorder.record_probe(PROBE)
        with caplog.at_level(logging.WARNING, logger="llm.history"):
            await recorder.stop()
        proxy.restore()

    assert (recorder.pending, recorder.dropped) == (0, 2)
    assert "history: 2 rows not saved" in caplog.text
    assert await rows(TierEvent) == []


async def test_a_sqlite_file_deleted_under_the_writer_is_reported_once_and_not_recreated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "db.sqlite3"
    path.write_bytes(b"")
    recorder = HistoryRecorder(use_default_layer=False, database_file=DatabaseFile(path))
    await recorder.start()
    recorder.record_probe(PROBE)
    await eventually(lambda: recorder.written == 1, within=5.0)

    with caplog.at_level(logging.ERROR, logger="llm.history"):
        path.unlink()
        recorder.record_probe(PROBE)
        await eventually(lambda: recorder.dropped == 1, within=5.0)
        recorder.record_probe(PROBE)
        await recorder.stop()

    assert (recorder.written, recorder.dropped) == (1, 2)
    assert len(await rows(Probe)) == 1
    [line] = [r.getMessage() for r in caplog.records]
    assert line == (
        f"the SQLite database file {path} was deleted while the bot runs: history is not being saved; "
        "restart the bot"
    )
    assert not path.exists()
