"""An adapter's state row through a database outage: kept in memory, one line per outage,
written once the database is back."""

from __future__ import annotations

import logging

import pytest

from chatbridge.adapters.status import AdapterStatus, State
from chatbridge.models import AdapterState
from tests.proxied_database import database_away

pytestmark = pytest.mark.django_db(transaction=True)


async def test_flushes_during_an_outage_say_it_once_and_write_when_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    status = AdapterStatus("twitch")
    caplog.set_level(logging.WARNING, "chatbridge.adapters")
    async with database_away():
        await status.set_state(State.CONNECTED, "")
        for _ in range(5):  # keep_flushed's ticks, every 5 s in production
            status.count_in()
            await status.flush()
    said = [r.getMessage() for r in caplog.records if r.name == "chatbridge.adapters"]
    assert len([line for line in said if "cannot reach" in line]) == 1, said

    await status.flush()
    row = await AdapterState.objects.aget(platform="twitch")
    assert (row.state, row.messages_in) == (State.CONNECTED, 5)
    said = [r.getMessage() for r in caplog.records if r.name == "chatbridge.adapters"]
    assert len([line for line in said if "is back after" in line]) == 1, said
