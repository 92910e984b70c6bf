"""EventSub chat notifications as chat events: real twitchio messages from Twitch's payload shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import twitchio
from twitchio.models.eventsub_ import create_event_instance

from chatbridge.adapters.twitch.messages import chat_event, source_channel
from chatbridge.adapters.twitch.streams import StreamInfos
from tests.fakes import fake_twitch as tw
from tests.fakes.fake_twitch import chat_message, shared_chat_copies

A = tw.STREAMER  # where the shared-chat message is typed
B = tw.OTHER_CHANNEL  # a channel of the same session, showing a copy
BOTH = {A[0]: A[1], B[0]: B[1]}
ONLY_B = {B[0]: B[1]}


@pytest.fixture
def client() -> Iterator[twitchio.Client]:
    yield twitchio.Client(client_id=tw.CLIENT_ID, client_secret=tw.CLIENT_SECRET, bot_id=tw.BOT_ID)


def message(client: twitchio.Client, notification: dict[str, Any]) -> twitchio.ChatMessage:
    instance: twitchio.ChatMessage = create_event_instance(
        "channel.chat.message", notification, http=client._http
    )
    return instance


def test_it_reads_a_viewers_badges(client: twitchio.Client) -> None:
    event = chat_event(message(client, chat_message("!ask salut", badges=["subscriber", "vip"])), tw.BOT_ID)

    assert (event.channel, event.channel_id) == (A[1], A[0])
    assert (event.user, event.user_id) == ("Viewer32", tw.VIEWER[0])
    assert event.is_subscriber and event.is_vip
    assert not event.is_moderator and not event.is_broadcaster


def test_a_founder_is_a_subscriber_and_a_plain_viewer_is_nothing(client: twitchio.Client) -> None:
    founder = chat_event(message(client, chat_message("!discord", badges=["founder"])), tw.BOT_ID)
    viewer = chat_event(message(client, chat_message("!discord")), tw.BOT_ID)

    assert founder.is_subscriber and not founder.is_vip
    assert not (viewer.is_subscriber or viewer.is_vip or viewer.is_moderator or viewer.is_broadcaster)


def test_moderators_and_the_broadcaster_are_known(client: twitchio.Client) -> None:
    moderator = chat_event(message(client, chat_message("!serdabot off", badges=["moderator"])), tw.BOT_ID)
    lead = chat_event(message(client, chat_message("!serdabot off", badges=["lead_moderator"])), tw.BOT_ID)
    broadcaster = chat_event(
        message(client, chat_message("!serdabot off", chatter=A, badges=["broadcaster"])), tw.BOT_ID
    )

    assert moderator.is_moderator and not moderator.is_broadcaster
    assert lead.is_moderator
    assert broadcaster.is_broadcaster and broadcaster.is_moderator


def test_a_message_outside_shared_chat_is_keyed_on_its_own_id(client: twitchio.Client) -> None:
    notification = chat_message("!ask salut")
    got = message(client, notification)

    assert source_channel(got) is None
    event = chat_event(got, tw.BOT_ID, joined=BOTH)
    assert event.message_id == notification["payload"]["event"]["message_id"]


@pytest.mark.parametrize("source_fields_in_source", [False, True])
def test_every_copy_of_a_shared_message_is_one_event_in_its_source_channel(
    client: twitchio.Client, source_fields_in_source: bool
) -> None:
    at_a, at_b = shared_chat_copies(
        "!ask on est combien ?",
        source=A,
        channels=[A, B],
        badges=["moderator", "subscriber"],
        source_fields_in_source=source_fields_in_source,
    )
    original = at_a["payload"]["event"]["message_id"]
    assert at_b["payload"]["event"]["message_id"] != original

    events = [chat_event(message(client, n), tw.BOT_ID, joined=BOTH) for n in (at_a, at_b)]

    assert events[0] == events[1]
    event = events[0]
    assert (event.channel, event.channel_id, event.message_id) == (A[1], A[0], original)
    # The badges where it was typed (and answered): a moderator and subscriber of A.
    assert event.is_moderator and event.is_subscriber


def test_a_copy_from_a_channel_the_bot_does_not_read_is_answered_where_it_arrived(
    client: twitchio.Client,
) -> None:
    (at_b,) = shared_chat_copies(
        "!serdabot off", source=A, channels=[B], badges=["moderator", "vip"], elsewhere_badges=["subscriber"]
    )

    got = message(client, at_b)
    event = chat_event(got, tw.BOT_ID, joined=ONLY_B)

    assert source_channel(got) is not None and source_channel(got).id == A[0]  # type: ignore[union-attr]
    assert (event.channel, event.channel_id) == (B[1], B[0])
    assert event.message_id == at_b["payload"]["event"]["source_message_id"]
    # B's badges: A's moderators do not control the bot in B.
    assert not event.is_moderator and not event.is_vip and event.is_subscriber


def test_the_source_broadcaster_is_the_broadcaster_only_in_their_channel(client: twitchio.Client) -> None:
    (at_b,) = shared_chat_copies("!serdabot off", source=A, channels=[B], chatter=A, badges=["broadcaster"])

    routed = chat_event(message(client, at_b), tw.BOT_ID, joined=BOTH)
    where_it_arrived = chat_event(message(client, at_b), tw.BOT_ID, joined=ONLY_B)

    assert routed.is_broadcaster and routed.channel == A[1]
    assert not where_it_arrived.is_broadcaster and not where_it_arrived.is_moderator


def test_the_answering_channels_title_and_game_go_with_the_event(client: twitchio.Client) -> None:
    streams = StreamInfos()
    streams.update(A[0], "Speedrun Celeste any%", "Celeste")
    streams.update(B[0], "Chill stream", "Just Chatting")
    (at_b,) = shared_chat_copies("!ask pb ?", source=A, channels=[B])

    routed = chat_event(message(client, at_b), tw.BOT_ID, joined=BOTH, streams=streams)
    here = chat_event(message(client, at_b), tw.BOT_ID, joined=ONLY_B, streams=streams)
    elsewhere = message(client, chat_message("!ask", broadcaster=tw.NIGHTBOT))
    unknown = chat_event(elsewhere, tw.BOT_ID, streams=streams)

    assert (routed.stream_title, routed.stream_game) == ("Speedrun Celeste any%", "Celeste")
    assert (here.stream_title, here.stream_game) == ("Chill stream", "Just Chatting")
    assert (unknown.stream_title, unknown.stream_game) == ("", "")
