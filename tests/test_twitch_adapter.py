"""The Twitch adapter: real twitchio against a fake Twitch on 127.0.0.1, a real worker and handler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer
from cryptography.fernet import Fernet

from chatbridge.adapters.errors import AdapterFatal
from chatbridge.adapters.outbound import Outgoing
from chatbridge.adapters.twitch import TwitchAdapter
from chatbridge.adapters.twitch.tokens import store_pair
from chatbridge.channel_settings import settings_cache
from chatbridge.events import WORKER_CHANNEL, ChatEvent
from chatbridge.models import AdapterState, ChannelSettings, TwitchToken
from serdabot import encryption
from serdabot.tasks import cancel_and_wait
from tests.adapter_support import eventually, running, running_bot
from tests.fakes import fake_twitch as tw
from tests.fakes.clock import ManualClock
from tests.fakes.fake_twitch import FakeTwitch, channel_update, chat_message, shared_chat_copies

pytestmark = pytest.mark.django_db(transaction=True)

MODERATOR = ("5550001", "modo_du_chat")


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwitch]:
    twitch = await FakeTwitch().start()
    yield twitch
    await twitch.close()


@pytest.fixture
async def layer() -> AsyncIterator[Any]:
    async with running_bot() as layer:
        yield layer


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def channel_settings(**values: Any) -> None:
    ChannelSettings.objects.update_or_create(platform="twitch", channel=tw.STREAMER[1], defaults=values)


async def say(fake: FakeTwitch, text: str, **kwargs: Any) -> str:
    notification = chat_message(text, **kwargs)
    await fake.push(notification)
    return str(notification["payload"]["event"]["message_id"])


async def test_it_answers_an_ask_with_one_helix_reply(
    fake: FakeTwitch, layer: Any, clock: ManualClock
) -> None:
    adapter = TwitchAdapter(fake.config(), layer=layer, clock=clock)
    async with running(adapter):
        asked = await say(fake, "!ask c'est quoi Python ?")
        await eventually(lambda: fake.sent, what="a reply")
        # A second line from someone else: once it is answered, the first cannot still be pending.
        other = await say(fake, "!chill", chatter=("4145995", "viewer33"))
        await eventually(lambda: fake.replies_to(other), what="the second reply")

    assert len(fake.replies_to(asked)) == 1
    reply = fake.replies_to(asked)[0]
    assert reply["broadcaster_id"] == tw.STREAMER[0]
    assert reply["sender_id"] == tw.BOT_ID
    assert reply["auth"] == f"Bearer {tw.APP_TOKEN}"  # app token: the chat-bot badge
    text = reply["message"]
    assert text.startswith("@Viewer32 ")
    assert len(text) <= 500 and "\n" not in text and text == " ".join(text.split())
    assert len(fake.sent) == 2
    # Start-up went through OAuth, validation, users, and a subscription made with the bot's user token.
    assert {"POST /oauth2/token", "GET /oauth2/validate", "GET /helix/users"} <= set(fake.requests)
    (subscription,) = [s for s in fake.subscriptions if s["type"] == "channel.chat.message"]
    assert subscription["condition"] == {"broadcaster_user_id": tw.STREAMER[0], "user_id": tw.BOT_ID}
    assert subscription["token"] == tw.USER_TOKEN


async def test_a_moderator_bypasses_the_cooldown_a_viewer_hits(
    fake: FakeTwitch, layer: Any, clock: ManualClock
) -> None:
    adapter = TwitchAdapter(fake.config(), layer=layer, clock=clock)
    async with running(adapter):
        first = await say(fake, "!ask un")
        await eventually(lambda: fake.replies_to(first), what="the viewer's first reply")
        await say(fake, "!ask deux")
        await eventually(lambda: adapter.status.cooldown_hits == 1, what="the cooldown")
        mod_one = await say(fake, "!ask trois", chatter=MODERATOR, badges=["moderator"])
        await eventually(lambda: fake.replies_to(mod_one), what="the moderator's reply")
        mod_two = await say(fake, "!ask quatre", chatter=MODERATOR, badges=["moderator"])
        await eventually(lambda: fake.replies_to(mod_two), what="the moderator's second reply")

    assert [m["reply_parent_message_id"] for m in fake.sent] == [first, mod_one, mod_two]
    assert adapter.status.cooldown_hits == 1


async def test_a_channel_can_make_moderators_wait_too(
    fake: FakeTwitch, layer: Any, clock: ManualClock
) -> None:
    await _sync(channel_settings, moderators_bypass=False)
    adapter = TwitchAdapter(fake.config(), layer=layer, clock=clock)
    async with running(adapter):
        first = await say(fake, "!ask un", chatter=MODERATOR, badges=["moderator"])
        await eventually(lambda: fake.replies_to(first), what="the first reply")
        await say(fake, "!ask deux", chatter=MODERATOR, badges=["moderator"])
        await eventually(lambda: adapter.status.cooldown_hits == 1, what="the cooldown")
        # Once the cooldown is over, the same person is answered again.
        clock.advance(31)
        third = await say(fake, "!ask trois", chatter=MODERATOR, badges=["moderator"])
        await eventually(lambda: fake.replies_to(third), what="the reply after the cooldown")

    assert len(fake.sent) == 2


async def test_a_cooling_user_gets_one_notice_when_the_channel_wants_it(
    fake: FakeTwitch, layer: Any, clock: ManualClock
) -> None:
    await _sync(channel_settings, cooldown_notice=True)
    adapter = TwitchAdapter(fake.config(), layer=layer, clock=clock)
    async with running(adapter):
        first = await say(fake, "!ask un")
        await eventually(lambda: fake.replies_to(first), what="the reply")
        clock.advance(10)
        second = await say(fake, "!ask deux")
        await eventually(lambda: fake.replies_to(second), what="the notice")
        await say(fake, "!ask trois")
        await eventually(lambda: adapter.status.cooldown_hits == 2, what="the second refusal")

    notice = fake.replies_to(second)[0]["message"]
    assert notice.startswith("@Viewer32 ⏳")
    assert "20 s" in notice  # 30 s cooldown, 10 s gone
    assert len(fake.sent) == 2  # the third line got silence, not a second notice


async def test_a_burst_never_breaks_twitchs_rate_limit(
    fake: FakeTwitch, layer: Any, clock: ManualClock
) -> None:
    await _sync(channel_settings, user_cooldown=0, channel_cooldown=0, reply_queue_limit=10)
    fake.stamp = clock.now
    adapter = TwitchAdapter(fake.config(), layer=layer, clock=clock)
    async with running(adapter):
        for n in range(100):
            await say(fake, f"!ask question {n}", chatter=(str(7_000_000 + n), f"viewer{n}"))
        await eventually(lambda: adapter.status.messages_in == 100, what="100 messages in")
        box = adapter.relay.outbound.box(tw.STREAMER[1]) if adapter.relay else None
        assert box is not None

        def settled() -> bool:
            return adapter.status.messages_out + adapter.status.replies_dropped + len(box) == 100

        await eventually(settled, what="every reply sent, queued or dropped")
        assert len(fake.sent) == 20  # the clock has not moved: one window's worth
        queued = len(box)
        assert 0 < queued <= 10
        clock.advance(30)
        await eventually(lambda: len(box) == 0, what="the backlog drained")
        await eventually(lambda: len(fake.sent) == 20 + queued, what="the backlog sent")
        await adapter.status.flush()

    stamps = [m["t"] for m in fake.sent]
    for start in stamps:
        assert sum(1 for t in stamps if start <= t < start + 30) <= 20
    dropped = 100 - len(fake.sent)
    assert dropped >= 70
    assert adapter.status.replies_dropped == dropped
    state = await _sync(AdapterState.objects.get, platform="twitch")
    assert (state.messages_in, state.messages_out, state.replies_dropped) == (100, len(fake.sent), dropped)


async def test_where_the_bot_is_moderator_it_may_send_more(
    fake: FakeTwitch, layer: Any, clock: ManualClock
) -> None:
    await _sync(channel_settings, user_cooldown=0, channel_cooldown=0, reply_queue_limit=100)
    adapter = TwitchAdapter(fake.config(), layer=layer, clock=clock)
    async with running(adapter):
        # The bot's own messages come back with its badges.
        await say(fake, "bonjour le chat", chatter=(tw.BOT_ID, tw.BOT_LOGIN), badges=["moderator"])
        await eventually(lambda: tw.STREAMER[1] in adapter.moderated, what="the bot's moderator badge")
        for n in range(30):
            await say(fake, f"!ask question {n}", chatter=(str(7_000_000 + n), f"viewer{n}"))
        await eventually(lambda: len(fake.sent) == 30, what="30 replies in one window")

    assert clock.now() == 1_000.0  # all within the same instant of the test's clock


async def test_a_429_backs_off_then_sends(fake: FakeTwitch, layer: Any, clock: ManualClock) -> None:
    fake.chat_script.extend(["429"])
    adapter = TwitchAdapter(fake.config(), layer=layer, clock=clock)
    async with running(adapter):
        asked = await say(fake, "!ask patience ?")
        await eventually(lambda: fake.chat_posts == 1 and clock.sleepers, what="the 429 and the backoff")
        assert fake.sent == []
        clock.advance(5)
        await eventually(lambda: fake.replies_to(asked), what="the retried reply")

    assert fake.chat_posts == 2
    assert adapter.status.messages_out == 1 and adapter.status.replies_dropped == 0


async def test_a_rejected_duplicate_is_logged_dropped_and_not_cooled(
    fake: FakeTwitch, layer: Any, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    fake.chat_script.extend(["duplicate"])
    adapter = TwitchAdapter(fake.config(), layer=layer, clock=clock)
    with caplog.at_level(logging.WARNING, logger="chatbridge"):
        async with running(adapter):
            await say(fake, "!ask encore ?")
            await eventually(lambda: adapter.status.replies_dropped == 1, what="the drop")
            # Nothing reached chat, so no cooldown started: the same viewer is answered at once.
            again = await say(fake, "!ask encore ?")
            await eventually(lambda: fake.replies_to(again), what="the second try")

    assert "msg_duplicate" in caplog.text
    assert adapter.status.cooldown_hits == 0


async def test_it_ignores_itself_and_other_bots_but_hears_structural_mentions(
    fake: FakeTwitch, layer: Any, clock: ManualClock
) -> None:
    adapter = TwitchAdapter(fake.config(), layer=layer, clock=clock)
    async with running(adapter):
        await say(fake, "!ask je suis un bot", chatter=tw.NIGHTBOT, badges=["moderator"])
        await say(fake, "!ask moi aussi", chatter=(tw.BOT_ID, tw.BOT_LOGIN))
        # "@serdabot_tv" is not BOT_NAME ("serdabot"), but Twitch says it is the bot.
        mention = await say(fake, f"@{tw.BOT_LOGIN} salut !", mention=(tw.BOT_ID, tw.BOT_LOGIN))
        await eventually(lambda: fake.replies_to(mention), what="the mention's reply")

    assert len(fake.sent) == 1
    assert adapter.status.messages_in == 1


async def test_tokens_live_in_the_database_and_never_in_logs(
    fake: FakeTwitch, layer: Any, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    # A token close to expiry: twitchio refreshes it on the way in, and the hook stores the new pair.
    fake.user_tokens[tw.USER_TOKEN] = (tw.BOT_ID, tw.BOT_SCOPES, 600)
    adapter = TwitchAdapter(fake.config(), layer=layer, clock=clock)
    with caplog.at_level(logging.DEBUG):
        async with running(adapter):
            asked = await say(fake, "!ask secret ?")
            await eventually(lambda: fake.replies_to(asked), what="a reply")

    stored = await _sync(TwitchToken.objects.get, user_id=tw.BOT_ID)
    assert stored.token.startswith("user-token-refreshed-") and stored.token in fake.user_tokens
    assert stored.refresh in fake.refresh_tokens
    assert stored.token not in repr(stored) and stored.token not in str(stored)
    secrets = [tw.USER_TOKEN, tw.REFRESH_TOKEN, tw.CLIENT_SECRET, stored.token, stored.refresh]
    assert caplog.records  # twitchio and the adapter did log, at DEBUG
    for secret in secrets:
        assert secret not in caplog.text
    assert tw.CLIENT_SECRET not in repr(adapter.config)


async def test_a_stored_token_is_used_before_the_environment(
    fake: FakeTwitch, layer: Any, clock: ManualClock
) -> None:
    fake.user_tokens["db-token-1234"] = (tw.BOT_ID, tw.BOT_SCOPES, 14_000)
    await _sync(
        TwitchToken.objects.create, user_id=tw.BOT_ID, token="db-token-1234", refresh="db-refresh-1234"
    )
    adapter = TwitchAdapter(fake.config(bot_token="", refresh_token=""), layer=layer, clock=clock)
    async with running(adapter):
        pass

    assert fake.subscriptions[0]["token"] == "db-token-1234"


async def test_a_bad_token_is_fatal_and_says_what_to_do(
    fake: FakeTwitch, layer: Any, clock: ManualClock
) -> None:
    adapter = TwitchAdapter(
        fake.config(bot_token="stale-token-0000", refresh_token="stale-refresh-0000"),
        layer=layer,
        clock=clock,
    )
    with pytest.raises(AdapterFatal) as caught:
        await adapter.run()

    message = str(caught.value)
    assert "README" in message and "stale-token-0000" not in message and "stale-refresh-0000" not in message
    assert fake.subscriptions == []


async def test_missing_scopes_are_named(fake: FakeTwitch, layer: Any, clock: ManualClock) -> None:
    fake.user_tokens[tw.USER_TOKEN] = (tw.BOT_ID, ["user:read:chat"], 14_000)
    adapter = TwitchAdapter(fake.config(), layer=layer, clock=clock)
    with pytest.raises(AdapterFatal, match="user:write:chat, user:bot"):
        await adapter.run()


async def test_a_wrong_client_secret_is_fatal(fake: FakeTwitch, layer: Any, clock: ManualClock) -> None:
    adapter = TwitchAdapter(fake.config(client_secret="wrong-secret-9999"), layer=layer, clock=clock)
    with pytest.raises(AdapterFatal, match="TWITCH_CLIENT_SECRET") as caught:
        await adapter.run()

    assert "wrong-secret-9999" not in str(caught.value)


async def test_a_refused_stored_token_is_fatal_and_the_setup_page_says_reconnect(
    fake: FakeTwitch, layer: Any, clock: ManualClock
) -> None:
    # Revoked at Twitch, with its refresh token: what the bot stored is no longer good.
    await _sync(
        TwitchToken.objects.create,
        user_id=tw.BOT_ID,
        token="revoked-token-1111",
        refresh="revoked-refresh-1111",
    )
    adapter = TwitchAdapter(fake.config(bot_token="", refresh_token=""), layer=layer, clock=clock)
    with pytest.raises(AdapterFatal, match="/twitch/connect/") as caught:
        await adapter.run()

    stored = await _sync(TwitchToken.objects.get, user_id=tw.BOT_ID)
    assert stored.needs_reconnect
    assert "revoked-token-1111" not in str(caught.value) and "revoked-refresh-11" not in str(caught.value)


async def test_a_token_stored_with_another_key_is_fatal_with_the_fix_named(
    fake: FakeTwitch, layer: Any, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SERDABOT_ENCRYPTION_KEY", raising=False)
    encryption.reset_keys()
    await _sync(store_pair, tw.BOT_ID, tw.USER_TOKEN, tw.REFRESH_TOKEN)
    monkeypatch.setenv("SERDABOT_ENCRYPTION_KEY", Fernet.generate_key().decode())
    encryption.reset_keys()
    try:
        adapter = TwitchAdapter(fake.config(bot_token="", refresh_token=""), layer=layer, clock=clock)
        with pytest.raises(AdapterFatal) as caught:
            await adapter.run()
    finally:
        monkeypatch.delenv("SERDABOT_ENCRYPTION_KEY")
        encryption.reset_keys()

    message = str(caught.value)
    assert "cannot be decrypted" in message and "SERDABOT_ENCRYPTION_KEY" in message
    assert "setup page" in message
    assert tw.USER_TOKEN not in message and fake.subscriptions == []


async def _sync(function: Any, *args: Any, **kwargs: Any) -> Any:
    from asgiref.sync import sync_to_async

    return await sync_to_async(function)(*args, **kwargs)


async def test_length_is_measured_after_whitespace_is_collapsed(
    fake: FakeTwitch, layer: Any, clock: ManualClock
) -> None:
    adapter = TwitchAdapter(fake.config(), layer=layer, clock=clock)
    spaced = "@Viewer32 " + "mot \n\t  " * 80  # 730 characters as written, 330 once collapsed
    async with running(adapter):
        assert adapter.relay is not None
        adapter.relay.outbound.put(Outgoing(tw.STREAMER[1], tw.STREAMER[0], spaced, "m-spaced"))
        adapter.relay.outbound.put(Outgoing(tw.STREAMER[1], tw.STREAMER[0], "x" * 600, "m-long"))
        await eventually(lambda: fake.replies_to("m-spaced") and fake.replies_to("m-long"), what="both")

    assert fake.replies_to("m-spaced")[0]["message"] == " ".join(spaced.split())
    long = fake.replies_to("m-long")[0]["message"]
    assert len(long) == 500 and long.endswith("…")
    assert adapter.status.replies_dropped == 0


async def test_without_channel_bot_it_replies_with_the_bots_user_token(
    fake: FakeTwitch, layer: Any, clock: ManualClock
) -> None:
    fake.no_channel_bot.add(tw.STREAMER[0])
    adapter = TwitchAdapter(fake.config(), layer=layer, clock=clock)
    async with running(adapter):
        asked = await say(fake, "!ask tu m'entends ?")
        await eventually(lambda: fake.replies_to(asked), what="the reply")

    assert fake.replies_to(asked)[0]["auth"] == f"Bearer {tw.USER_TOKEN}"
    assert adapter.status.replies_dropped == 0


async def test_a_lone_surrogate_in_a_chat_line_still_gets_its_one_reply(
    fake: FakeTwitch, layer: Any, clock: ManualClock
) -> None:
    # EventSub's JSON can carry "\ud800"; msgpack (the Redis layer) cannot encode it.
    adapter = TwitchAdapter(fake.config(), layer=layer, clock=clock)
    async with running(adapter):
        asked = await say(fake, "!chill \ud800 salut")
        await eventually(lambda: fake.replies_to(asked), what="the reply")

    (reply,) = fake.replies_to(asked)
    reply["message"].encode("utf-8")


# Shared Chat: one message, one copy per channel of the session, one reply.


@pytest.mark.parametrize("source_fields_in_source", [False, True])
async def test_a_shared_chat_message_seen_in_two_joined_channels_is_answered_once_at_its_source(
    fake: FakeTwitch, layer: Any, clock: ManualClock, source_fields_in_source: bool
) -> None:
    a, b = tw.STREAMER, tw.OTHER_CHANNEL
    at_a, at_b = shared_chat_copies(
        "!ask on est deux chats ?", source=a, channels=[a, b], source_fields_in_source=source_fields_in_source
    )
    original = at_a["payload"]["event"]["message_id"]
    adapter = TwitchAdapter(fake.config(channels=(a[1], b[1])), layer=layer, clock=clock)
    async with running(adapter):
        # The worst order: the copy in the other channel comes first.
        await fake.push(at_b)
        await fake.push(at_a)
        await eventually(lambda: fake.replies_to(original), what="the reply")
        later = await say(fake, "!chill", chatter=("4145995", "viewer33"))
        await eventually(lambda: fake.replies_to(later), what="a later line's reply")

    (reply,) = fake.replies_to(original)
    assert reply["broadcaster_id"] == a[0]
    assert len(fake.sent) == 2
    assert adapter.relay is not None and adapter.relay.duplicates == 1


async def test_a_shared_chat_message_from_a_channel_the_bot_does_not_read_is_answered_where_it_arrived(
    fake: FakeTwitch, layer: Any, clock: ManualClock
) -> None:
    a, b, c = tw.STREAMER, tw.OTHER_CHANNEL, fake.add_channel("troisiemechan")
    at_b, at_c = shared_chat_copies("!ask qui parle ?", source=a, channels=[b, c])
    copy_at_b = at_b["payload"]["event"]["message_id"]
    adapter = TwitchAdapter(fake.config(channels=(b[1], c[1])), layer=layer, clock=clock)
    async with running(adapter):
        await fake.push(at_b)
        await fake.push(at_c)
        await eventually(lambda: fake.replies_to(copy_at_b), what="the reply in the first channel")
        later = await say(fake, "!chill", chatter=("4145995", "viewer33"), broadcaster=c)
        await eventually(lambda: fake.replies_to(later), what="a later line's reply")

    (reply,) = fake.replies_to(copy_at_b)  # the reply names the copy in that channel
    assert reply["broadcaster_id"] == b[0]
    assert len(fake.sent) == 2


# The stream's title and game: Helix at start, then channel.update.


@contextlib.asynccontextmanager
async def recording_worker() -> AsyncIterator[tuple[Any, list[ChatEvent]]]:
    """The real layer with a stand-in worker that records each event and has nothing to say."""
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    layer = get_channel_layer()
    await layer.flush()
    seen: list[ChatEvent] = []

    async def work() -> None:
        while True:
            message = await layer.receive(WORKER_CHANNEL)
            event = ChatEvent.from_message(message["event"])
            seen.append(event)
            await layer.send(
                message["reply_channel"], {"type": "chat.reply", "event_id": event.message_id, "reply": None}
            )

    worker = asyncio.create_task(work())
    try:
        yield layer, seen
    finally:
        await cancel_and_wait([worker])
        settings_cache.clear()
        if hasattr(layer, "close_pools"):
            await layer.close_pools()
        channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)


async def test_each_event_carries_its_channels_title_and_game_from_helix_then_channel_update(
    fake: FakeTwitch, clock: ManualClock
) -> None:
    a, b = tw.STREAMER, tw.OTHER_CHANNEL
    fake.channel_info[a[0]] = ("Speedrun Celeste any% \U0001f3d4", ("504461", "Celeste"))
    async with recording_worker() as (layer, seen):
        adapter = TwitchAdapter(fake.config(channels=(a[1], b[1])), layer=layer, clock=clock)
        async with running(adapter):
            await say(fake, "!ask quel jeu ?")
            await say(fake, "!ask et ici ?", broadcaster=b)
            await eventually(lambda: len(seen) == 2, what="two events")
            await fake.push(channel_update(a, "Boss final", ("1", "Hades")))
            await eventually(lambda: adapter.streams.get(a[0]).title == "Boss final", what="the update")
            await say(fake, "!ask et maintenant ?", chatter=("4145995", "viewer33"))
            await eventually(lambda: len(seen) == 3, what="the third event")

    first, elsewhere, after = seen
    assert (first.stream_title, first.stream_game) == ("Speedrun Celeste any% \U0001f3d4", "Celeste")
    assert (elsewhere.stream_title, elsewhere.stream_game) == ("", "")  # Helix knew nothing of it
    assert (after.stream_title, after.stream_game) == ("Boss final", "Hades")
    assert fake.channel_queries == [[a[0], b[0]]]  # one request for every channel
    updates = [s["condition"] for s in fake.subscriptions if s["type"] == "channel.update"]
    assert updates == [{"broadcaster_user_id": a[0]}, {"broadcaster_user_id": b[0]}]
    assert {s["version"] for s in fake.subscriptions if s["type"] == "channel.update"} == {"2"}


async def test_without_helix_titles_nor_channel_update_chat_still_works(
    fake: FakeTwitch, layer: Any, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    fake.channels_status = 500
    fake.refused_subscriptions["channel.update"] = (403, "subscription missing proper authorization")
    adapter = TwitchAdapter(fake.config(), layer=layer, clock=clock)
    with caplog.at_level(logging.WARNING, logger="chatbridge"):
        async with running(adapter):
            asked = await say(fake, "!ask tu es là ?")
            await eventually(lambda: fake.replies_to(asked), what="the reply")

    helix = [r for r in caplog.records if "Helix" in r.getMessage()]
    refused = [r for r in caplog.records if "channel.update refused" in r.getMessage()]
    assert len(helix) == 1 and "HTTP 500" in helix[0].getMessage()
    assert len(refused) == 1 and "HTTP 403" in refused[0].getMessage()
    assert len(adapter.streams) == 0


async def test_a_token_revoked_while_running_stops_the_adapter_and_says_reconnect(
    fake: FakeTwitch, layer: Any, clock: ManualClock
) -> None:
    adapter = TwitchAdapter(fake.config(), layer=layer, clock=clock, watch_every=0.05)
    task = asyncio.create_task(adapter.run())
    await eventually(lambda: adapter.connected.is_set() or task.done(), what="connected")
    assert adapter.client is not None and not task.done()
    # Revoked at Twitch: twitchio's hourly revalidation fails, its refresh is refused, and it
    # drops the token without a word (the real twitchio path, against the fake's 400).
    fake.refresh_tokens.clear()
    kept = adapter.client.tokens[tw.BOT_ID]
    await adapter.client._http._refresh_token(tw.BOT_ID, kept["refresh"])

    with pytest.raises(AdapterFatal, match="/twitch/connect/"):
        await asyncio.wait_for(task, 10)
    stored = await _sync(TwitchToken.objects.get, user_id=tw.BOT_ID)
    assert stored.needs_reconnect
