"""A platform connected in the browser starts without a restart: the setup watch, the change
broadcast and real adapters against fake Twitch and Discord servers, with a real database,
layer, worker and handler."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from chatbridge.adapters.setup_watch import SetupWatch
from chatbridge.adapters.status import State
from chatbridge.adapters.twitch.tokens import load_pair, store_pair
from chatbridge.bot import cancel, start_adapters, start_change_listener
from chatbridge.models import AdapterState, ChannelSettings, DiscordBot, TwitchApp, TwitchToken
from serdabot.broadcast import notify_changed
from tests.adapter_support import eventually, running_bot
from tests.fakes import fake_twitch as tw
from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_twitch import FakeTwitch, chat_message

pytestmark = pytest.mark.django_db(transaction=True)

# Long: a test sees the notice do the work, not the periodic look.
NO_LOOK = 3600.0


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwitch]:
    twitch = await FakeTwitch().start()
    yield twitch
    await twitch.close()


@pytest.fixture
def env(fake: FakeTwitch, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Nothing configured in the environment: only the URLs, pointing at the fakes."""
    for name, value in fake.env(channels=()).items():
        if name.endswith("_URL"):
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    for name in ("DISCORD_TOKEN", "DISCORD_CHANNELS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@contextlib.asynccontextmanager
async def watching(*platforms: str) -> AsyncIterator[SetupWatch]:
    """`runbot`'s adapters part: the watch, the settings refresh and the change listener."""
    watch = SetupWatch(platforms, setup_url="http://127.0.0.1:8000/", look_every=NO_LOOK)
    tasks = [*start_adapters(platforms, watch), start_change_listener(watch.refreshers())]
    try:
        yield watch
    finally:
        await cancel(tasks)


def connect_twitch(token: str = tw.USER_TOKEN, refresh: str = tw.REFRESH_TOKEN) -> None:
    """What the connect page saves, then says."""
    TwitchApp.objects.update_or_create(
        pk=1, defaults={"client_id": tw.CLIENT_ID, "client_secret": tw.CLIENT_SECRET, "bot_id": tw.BOT_ID}
    )
    store_pair(tw.BOT_ID, token, refresh, login=tw.BOT_LOGIN, connected=True)
    ChannelSettings.objects.get_or_create(platform="twitch", channel=tw.STREAMER[1])
    notify_changed("twitch-setup")


def state(watch: SetupWatch, platform: str) -> str:
    running = watch.running.get(platform)
    return running.adapter.status.state if running is not None else ""


async def ask(fake: FakeTwitch, text: str, chatter: tuple[str, str] = tw.VIEWER) -> str:
    notification = chat_message(text, chatter=chatter)
    await fake.push(notification)
    return str(notification["payload"]["event"]["message_id"])


async def test_a_fresh_install_answers_in_twitch_chat_once_connected_in_the_browser(
    fake: FakeTwitch, env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with running_bot(), watching("twitch") as watch:
        await eventually(lambda: "No chat platform configured" in caplog.text, what="the first look")
        assert watch.running == {} and fake.requests == []

        await sync_to_async(connect_twitch)()
        await eventually(lambda: state(watch, "twitch") == State.CONNECTED, what="Twitch started")
        asked = await ask(fake, "!ask tu es là ?")
        await eventually(lambda: fake.replies_to(asked), what="the reply")

    assert "http://127.0.0.1:8000/twitch/connect/" in caplog.text
    assert "Twitch is configured: starting its adapter" in caplog.text
    assert fake.replies_to(asked)[0]["broadcaster_id"] == tw.STREAMER[0]


async def test_a_refused_token_says_reconnect_and_connecting_again_starts_the_bot_again(
    fake: FakeTwitch, env: pytest.MonkeyPatch
) -> None:
    async with running_bot(), watching("twitch") as watch:
        await sync_to_async(connect_twitch)("revoked-token-2222", "revoked-refresh-2222")
        await eventually(lambda: state(watch, "twitch") == State.FAILED, what="the fatal error")
        first = watch.running["twitch"].adapter
        stored = await TwitchToken.objects.aget(user_id=tw.BOT_ID)
        assert stored.needs_reconnect  # the connect page says "reconnect"

        await sync_to_async(connect_twitch)()  # connected again from the page: a new token
        await eventually(lambda: state(watch, "twitch") == State.CONNECTED, what="started again")
        asked = await ask(fake, "!ask de retour ?")
        await eventually(lambda: fake.replies_to(asked), what="the reply")

    assert watch.running["twitch"].task.done()  # stopped with the watch
    assert first.status.last_error and "/twitch/connect/" in first.status.last_error
    stored = await TwitchToken.objects.aget(user_id=tw.BOT_ID)
    assert not stored.needs_reconnect


async def test_new_credentials_restart_the_running_adapter_with_them(
    fake: FakeTwitch, env: pytest.MonkeyPatch
) -> None:
    await sync_to_async(connect_twitch)()
    async with running_bot(), watching("twitch") as watch:
        await eventually(lambda: state(watch, "twitch") == State.CONNECTED, what="Twitch started")
        first = watch.running["twitch"].adapter

        # The application's secret was regenerated on dev.twitch.tv and pasted into the page.
        fake.client_secret = "regenerated-secret-5678"
        await TwitchApp.objects.filter(pk=1).aupdate(client_secret="regenerated-secret-5678")
        await sync_to_async(notify_changed)("twitch-setup")
        await eventually(lambda: watch.running["twitch"].adapter is not first, what="the restart")
        assert first.status.state == State.STOPPED
        await eventually(lambda: state(watch, "twitch") == State.CONNECTED, what="connected again")
        second: Any = watch.running["twitch"].adapter
        asked = await ask(fake, "!ask nouveau secret ?")
        await eventually(lambda: fake.replies_to(asked), what="the reply")

    assert second.config.client_secret == "regenerated-secret-5678"  # an app token from the new secret


async def test_a_discord_token_saved_on_its_page_starts_discord(
    fake: FakeTwitch, env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    discord = await FakeDiscord().start()
    for name, value in discord.env().items():
        if name.endswith("_URL"):
            env.setenv(name, value)
    try:
        async with running_bot(), watching("twitch", "discord") as watch:
            await eventually(lambda: "No chat platform configured" in caplog.text, what="the first look")
            await DiscordBot.objects.acreate(pk=1, token=discord.env()["DISCORD_TOKEN"])
            await sync_to_async(notify_changed)("discord-setup")
            await eventually(lambda: state(watch, "discord") == State.CONNECTED, what="Discord started")
            assert "twitch" not in watch.running

            # Its token removed from the page: the adapter stops.
            await DiscordBot.objects.filter(pk=1).aupdate(token="")
            await sync_to_async(notify_changed)("discord-setup")
            await eventually(lambda: "discord" not in watch.running, what="Discord stopped")
    finally:
        await discord.close()


async def test_stopping_waits_for_the_adapters_to_close(fake: FakeTwitch, env: pytest.MonkeyPatch) -> None:
    await sync_to_async(connect_twitch)()
    async with running_bot(), watching("twitch") as watch:
        await eventually(lambda: state(watch, "twitch") == State.CONNECTED, what="Twitch started")
        adapter = watch.running["twitch"].adapter
    # cancel() repeats its cancellations: the watch still waited for the adapter's own cleanup.
    assert adapter.status.state == State.STOPPED
    row = await AdapterState.objects.aget(platform="twitch")
    assert row.state == AdapterState.State.STOPPED


async def test_a_token_that_lacks_a_scope_fails_once_and_is_not_restarted_again_and_again(
    fake: FakeTwitch, env: pytest.MonkeyPatch
) -> None:
    fake.user_tokens["scopeless-token-3333"] = (tw.BOT_ID, ["user:read:chat"], 14_000)
    await sync_to_async(connect_twitch)("scopeless-token-3333", "scopeless-refresh-3333")
    async with running_bot(), watching("twitch") as watch:
        await eventually(lambda: state(watch, "twitch") == State.FAILED, what="the fatal error")
        failed = watch.running["twitch"]
        for _ in range(3):  # the periodic looks: the adapter stored the token it was given
            await watch.look()
        assert watch.running["twitch"] is failed
        assert "user:bot" in str(failed.adapter.status.last_error)


async def test_the_bot_account_connected_again_while_running_restarts_with_the_new_token(
    fake: FakeTwitch, env: pytest.MonkeyPatch
) -> None:
    await sync_to_async(connect_twitch)()
    async with running_bot(), watching("twitch") as watch:
        await eventually(lambda: state(watch, "twitch") == State.CONNECTED, what="Twitch started")
        first = watch.running["twitch"].adapter
        fake.user_tokens["second-token-4444"] = (tw.BOT_ID, tw.BOT_SCOPES, 14_000)
        fake.refresh_tokens["second-refresh-4444"] = tw.BOT_ID
        await sync_to_async(connect_twitch)("second-token-4444", "second-refresh-4444")
        await eventually(lambda: watch.running["twitch"].adapter is not first, what="the restart")
        await eventually(lambda: state(watch, "twitch") == State.CONNECTED, what="connected again")
        asked = await ask(fake, "!ask toujours là ?")
        await eventually(lambda: fake.replies_to(asked), what="the reply")
    # The first adapter, closing, did not write its old token over the new connection.
    stored = await sync_to_async(load_pair)(tw.BOT_ID)
    assert stored is not None and stored.pair.token == "second-token-4444"
