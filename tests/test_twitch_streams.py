"""The joined channels' titles and games: broadcaster text, kept safe and bounded."""

from __future__ import annotations

from chatbridge.adapters.twitch.streams import GAME_LIMIT, TITLE_LIMIT, StreamInfos


def test_it_keeps_the_latest_title_and_game_per_channel() -> None:
    streams = StreamInfos()
    streams.update("1", "Titre un", "Celeste")
    streams.update("1", "Titre deux", "Hades")

    assert (streams.get("1").title, streams.get("1").game) == ("Titre deux", "Hades")
    assert streams.get("2").title == "" and streams.get("2").game == ""


def test_a_title_is_one_line_bounded_and_encodable() -> None:
    streams = StreamInfos()
    streams.update("1", "Ligne une\nligne \ud800deux\u200b " + "x" * 500, None)

    title = streams.get("1").title
    assert title.startswith("Ligne une ligne deux ")
    assert len(title) <= TITLE_LIMIT and title.endswith("…")
    title.encode("utf-8")
    assert streams.get("1").game == ""
    streams.update("1", "", "g" * 300)
    assert len(streams.get("1").game) <= GAME_LIMIT


def test_channels_no_longer_read_are_forgotten() -> None:
    streams = StreamInfos()
    streams.update("1", "un", "")
    streams.update("2", "deux", "")
    streams.keep_only(["2"])

    assert len(streams) == 1 and streams.get("1").title == "" and streams.get("2").title == "deux"
