"""The channel settings snapshot through a database outage: adapters still connect, one line
per outage, and the rows the outage kept from being created are created once it is over."""

from __future__ import annotations

import logging

import pytest
from asgiref.sync import sync_to_async

from chatbridge.channel_settings import ChannelSettingsCache, defaults
from chatbridge.models import ChannelSettings
from tests.proxied_database import database_away, database_through_a_proxy

pytestmark = pytest.mark.django_db(transaction=True)


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "chatbridge.channel_settings"]


async def test_an_adapter_connecting_while_the_database_is_away_is_not_held_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await sync_to_async(ChannelSettings.objects.create)(
        platform="twitch", channel="streamer", user_cooldown=42
    )
    cache = ChannelSettingsCache()
    await cache.refresh()
    caplog.set_level(logging.INFO, "chatbridge.channel_settings")
    async with database_away():
        # A websocket drop during the outage: the adapter reconnects (ensure_rows) twice,
        # and the periodic refresh fails meanwhile. Nothing raises.
        await cache.ensure_rows("twitch", ["streamer", "NewChan"])
        await cache.ensure_rows("twitch", ["streamer", "NewChan"])
        assert not await cache.refresh()
        assert cache.get("twitch", "streamer").user_cooldown == 42  # the last snapshot is kept
        assert cache.get("twitch", "newchan") == defaults()
    assert len([line for line in outage_lines(caplog) if "cannot reach" in line]) == 1

    assert await cache.refresh()
    channels = await sync_to_async(
        lambda: sorted(ChannelSettings.objects.values_list("channel", flat=True))
    )()
    assert channels == ["newchan", "streamer"]  # the row the outage held back, created now
    assert len([line for line in outage_lines(caplog) if "is back after" in line]) == 1


async def test_a_refresh_that_fails_for_a_bug_does_not_end_the_refresh_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = ChannelSettingsCache()
    calls: list[int] = []

    async def broken_refresh() -> bool:
        calls.append(1)
        if len(calls) >= 3:
            raise SystemExit  # out of the loop, through it: the test's way to stop it
        raise ValueError("a bug, not an outage")

    cache.refresh = broken_refresh  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        await cache.keep_fresh(every=0.01)
    assert len(calls) == 3  # it went on after the first failure
    assert len([r for r in caplog.records if "refreshing failed" in r.getMessage()]) == 1


async def test_a_connection_broken_by_a_cut_is_not_reused_once_the_database_is_back() -> None:
    cache = ChannelSettingsCache()
    async with database_through_a_proxy() as proxy:
        assert await cache.refresh()  # a connection through the proxy, open
        proxy.cut()  # reset under it, as when the database host goes down
        assert not await cache.refresh()
        proxy.restore()
        await sync_to_async(ChannelSettings.objects.create)(
            platform="twitch", channel="later", user_cooldown=7
        )
        assert await cache.refresh()
        assert cache.get("twitch", "later").user_cooldown == 7


async def test_a_channel_first_seen_during_the_outage_gets_its_row_when_it_is_back() -> None:
    # The Discord adapter defers a new channel's row while the database is away.
    cache = ChannelSettingsCache()
    async with database_away():
        assert not await cache.refresh()
        assert cache.outage.ongoing  # what the adapter checks before trying
        cache.remember_later("discord", "123456789", "#général")
    assert await cache.refresh()
    row = await ChannelSettings.objects.aget(platform="discord", channel="123456789")
    assert row.label == "#général"
    assert not cache.outage.ongoing


async def test_the_joined_channels_are_listed_in_the_order_added_and_each_reload_is_told() -> None:
    cache = ChannelSettingsCache()
    told: list[int] = []
    stop = cache.on_reload(lambda: told.append(1))
    await sync_to_async(ChannelSettings.objects.create)(platform="twitch", channel="zed", broadcaster_id="9")
    await sync_to_async(ChannelSettings.objects.create)(platform="twitch", channel="abc")
    await sync_to_async(ChannelSettings.objects.create)(platform="twitch", channel="paused", joined=False)
    await sync_to_async(ChannelSettings.objects.create)(platform="discord", channel="123")

    assert await cache.refresh()
    stop()
    assert await cache.refresh()

    assert cache.joined("twitch") == {"zed": "9", "abc": ""}
    assert list(cache.joined("twitch")) == ["zed", "abc"]
    assert cache.joined("discord") == {"123": ""}
    assert told == [1]  # the second reload came after stop()
