"""Chart series: raw rows for the partial hours, roll-ups between, the same numbers per bucket either way."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from llm.dashboard import series
from llm.dashboard.buckets import Buckets
from llm.history import histogram, local_time
from llm.history.recorder import BATCH_SIZE
from llm.history.recorder import _save as save_batch
from llm.history.rollups import Tally
from llm.models import CascadeCall, Probe, Rollup, WrittenBy
from tests.zones import KATHMANDU, PARIS, paris

__all__ = ["paris"]  # the fixture, used by name

SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
BOT, BOTH = ("bot",), ("bot", "console")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=PARIS)


# Custom windows that start and end mid-hour, one per kind of bucket; the last ones hold
# the fall-back night of 2026-10-25.
WINDOWS = [
    pytest.param(at(2026, 10, 24, 20, 17, 31), at(2026, 10, 25, 9, 43, 2), id="13h-minutes"),
    pytest.param(at(2026, 10, 23, 22, 17, 31), at(2026, 10, 25, 4, 43, 2), id="30h-hours"),
    pytest.param(at(2026, 10, 21, 7, 17, 31), at(2026, 10, 28, 9, 43, 2), id="7d-2-hours"),
    pytest.param(at(2026, 10, 19, 7, 17, 31), at(2026, 10, 28, 9, 43, 2), id="9d-days"),
    pytest.param(at(2026, 9, 20, 7, 17, 31), at(2026, 10, 30, 9, 43, 2), id="40d-days"),
    pytest.param(at(2026, 8, 20, 7, 17, 31), at(2026, 10, 30, 9, 43, 2), id="71d-days"),
    pytest.param(at(2026, 6, 3, 7, 17, 31), at(2026, 10, 30, 9, 43, 2), id="149d-weeks"),
]


def probe_row(created: datetime, tier: str, ok: bool, latency: float | None, role: str = "") -> Probe:
    return Probe(created=created, tier=tier, ok=ok, latency_ms=latency, role=role)


def call_row(
    created: datetime, source: str, latency: float, first_token: float | None, role: str = ""
) -> CascadeCall:
    return CascadeCall(
        created=created,
        platform="twitch",
        intent="ask",
        source=source,
        latency_ms=latency,
        first_token_ms=first_token,
        role=role,
    )


def save(rows: list[WrittenBy]) -> None:
    """As the history writer saves rows: in batches, each with its roll-ups."""
    for start in range(0, len(rows), BATCH_SIZE):
        save_batch(rows[start : start + BATCH_SIZE])


def history(seed: int, first: datetime, last: datetime, gaps: tuple[int, int]) -> None:
    rng = random.Random(seed)
    rows: list[WrittenBy] = []
    moment = first
    while moment < last:
        role = "console" if rng.random() < 0.2 else rng.choice(["", "worker"])
        if rng.random() < 0.6:
            ok = rng.random() > 0.2
            latency = rng.lognormvariate(5, 1.3)
            rows.append(probe_row(moment, rng.choice(["local", "openai"]), ok, latency, role))
        else:
            source = rng.choice(["local", "openai", "fallback"])
            first_token = None if source == "fallback" else rng.lognormvariate(5.5, 0.8)
            rows.append(call_row(moment, source, rng.lognormvariate(7, 0.7), first_token, role))
        moment += timedelta(seconds=rng.randint(*gaps))
    save(rows)


def edges_of(start: datetime, end: datetime) -> None:
    """Rows on and around both ends of the window: those at `start` count, those at `end` do not."""
    rows: list[WrittenBy] = []
    for moment in (start - SECOND, start, start + SECOND, end - SECOND, end):
        rows.append(probe_row(moment, "local", True, 42.0))
        rows.append(call_row(moment, "openai", 800.0, 120.0, "console"))
    save(rows)


def expected_cells(buckets: Buckets, scopes: tuple[str, ...]) -> dict[tuple[str, str], dict[int, Tally]]:
    """Per (series, key) per bucket, from every raw row in the window, bucketed in Python."""
    cells: dict[tuple[str, str], dict[int, Tally]] = {}

    def add(key: tuple[str, str], created: datetime, ok: bool, ms: float | None) -> None:
        number = buckets.index_of(created)
        cells.setdefault(key, {}).setdefault(number, Tally()).add(ok, ms)

    window = {"created__gte": buckets.start, "created__lt": buckets.end}
    probes = Probe._default_manager.filter(**window)
    calls = CascadeCall._default_manager.filter(**window)
    if "console" not in scopes:
        probes, calls = probes.exclude(role="console"), calls.exclude(role="console")
    for created, tier, ok, latency in probes.values_list("created", "tier", "ok", "latency_ms"):
        add(("probe", tier), created, ok, latency)
    for created, source, latency, first_token in calls.values_list(
        "created", "source", "latency_ms", "first_token_ms"
    ):
        add(("reply", source), created, True, latency)
        if first_token is not None:
            add(("first_token", source), created, True, first_token)
    return cells


def summary(
    cells: dict[tuple[str, str], dict[int, Tally]],
) -> dict[tuple[str, str], dict[int, tuple[object, ...]]]:
    return {
        key: {n: (t.count, t.ok, t.hist, round(t.total_ms, 3)) for n, t in per.items()}
        for key, per in cells.items()
    }


@pytest.mark.usefixtures("paris")
def test_the_windows_below_cover_every_kind_of_bucket() -> None:
    units = [Buckets.for_window(*window.values).unit for window in WINDOWS]  # type: ignore[arg-type]

    assert units == ["minute", "hour", "hour", "day", "day", "day", "week"]


# -- pieces -------------------------------------------------------------------------


def assert_pieces_cover(buckets: Buckets) -> list[tuple[str, datetime, datetime]]:
    pieces = series.pieces(buckets)
    assert all(start <= end for _source, start, end in pieces)
    kept = [piece for piece in pieces if piece[1] < piece[2]]
    assert kept[0][1] == buckets.start and kept[-1][2] == buckets.end
    assert all(a[2] == b[1] for a, b in pairwise(kept)), kept
    return kept


@pytest.mark.parametrize("zone", [PARIS, KATHMANDU])
@pytest.mark.parametrize(
    "span",
    [HOUR, DAY, 30 * HOUR, 7 * DAY, 30 * DAY, 90 * DAY, 365 * DAY, 3 * HOUR + 10 * SECOND, 26 * HOUR],
)
def test_pieces_cover_the_window_once(zone: ZoneInfo, span: timedelta) -> None:
    end = datetime(2026, 10, 29, 9, 43, 2, tzinfo=zone)
    with timezone.override(zone):
        buckets = Buckets.for_window(end - span, end)
        pieces = assert_pieces_cover(buckets)

        if buckets.sub_hour:
            assert pieces == [("raw", buckets.start, buckets.end)]
            return
        for source, start, end_ in pieces:
            if source == "raw":
                # A partial hour, inside one local hour and so inside one bucket.
                assert end_ - start < HOUR
                assert local_time.hour_start(start) == local_time.hour_start(end_ - SECOND)
                assert buckets.index_of(start) == buckets.index_of(end_ - SECOND)
            elif source == "hour":
                assert local_time.hour_start(start) == start and local_time.hour_start(end_) == end_
            else:
                assert source == "day" and buckets.unit in ("day", "week")
                assert local_time.day_start(start) == start and local_time.day_start(end_) == end_
    sources = [source for source, _start, _end in pieces]
    assert sources.count("raw") <= 2 and "hour" in sources
    assert ("day" in sources) == (buckets.unit in ("day", "week"))


def test_a_window_within_one_hour_of_a_long_chart_is_all_raw() -> None:
    # Over a day long, so hour buckets, yet no whole hour between the ends: nothing to roll up.
    start = datetime(2026, 6, 1, 10, 5, tzinfo=UTC)
    buckets = Buckets(start, start + 20 * 60 * SECOND, (start, start + HOUR), "hour", 1)

    assert series.pieces(buckets) == [("raw", buckets.start, buckets.end)]


def test_windows_of_a_day_or_less_are_read_from_raw_rows_only() -> None:
    end = datetime(2026, 6, 1, 10, 5, tzinfo=UTC)
    for span in (HOUR, 6 * HOUR, DAY):
        buckets = Buckets.for_window(end - span, end)
        assert buckets.sub_hour
        assert series.pieces(buckets) == [("raw", end - span, end)]


# -- aggregates ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def history_rows(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> Iterator[None]:
    """Five months of rows, written once for the module (each test's own rows are rolled back)."""
    with django_db_blocker.unblock(), timezone.override(PARIS):  # type: ignore[attr-defined]
        history(seed=3, first=at(2026, 5, 28, 3, 2), last=at(2026, 9, 15), gaps=(3 * 3600, 12 * 3600))
        history(seed=4, first=at(2026, 9, 15), last=at(2026, 11, 2), gaps=(600, 7200))
    yield
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        for model in (Probe, CascadeCall, Rollup):
            model._default_manager.all().delete()


@pytest.fixture
def rows(history_rows: None, db: None, paris: None) -> None:
    pass


@pytest.mark.usefixtures("rows")
@pytest.mark.parametrize("scopes", [BOT, BOTH], ids=["bot", "with-console"])
@pytest.mark.parametrize(("start", "end"), WINDOWS)
def test_each_bucket_holds_what_the_raw_rows_say(
    start: datetime, end: datetime, scopes: tuple[str, ...]
) -> None:
    edges_of(start, end)
    buckets = Buckets.for_window(start, end)

    result = series.aggregate(buckets, scopes)

    expected = expected_cells(buckets, scopes)
    assert len(expected) >= 4
    assert summary(result.cells) == summary(expected)
    for key, per in expected.items():
        total = result.total(*key)
        assert (total.count, total.ok) == (
            sum(t.count for t in per.values()),
            sum(t.ok for t in per.values()),
        )


@pytest.mark.usefixtures("rows")
@pytest.mark.parametrize(("start", "end"), WINDOWS[2:])
def test_the_whole_hours_of_a_long_window_come_from_roll_ups(start: datetime, end: datetime) -> None:
    edges_of(start, end)
    buckets = Buckets.for_window(start, end)
    before = series.aggregate(buckets, BOT).total("probe", "local").count
    Rollup._default_manager.all().delete()

    left = series.aggregate(buckets, BOT).total("probe", "local").count

    first_hour, last_hour = local_time.ceil_hour(start), local_time.hour_start(end)
    partial = (
        Probe._default_manager.filter(tier="local")
        .exclude(role="console")
        .filter(created__gte=start, created__lt=end)
        .exclude(created__gte=first_hour, created__lt=last_hour)
        .count()
    )
    assert partial >= 3  # the edge rows
    assert left == partial < before


@pytest.mark.django_db
@pytest.mark.usefixtures("paris")
@pytest.mark.parametrize("span", [DAY, 30 * DAY], ids=["raw", "roll-ups"])
def test_console_runs_are_left_out_unless_asked_for(span: timedelta) -> None:
    end = at(2027, 3, 20, 12, 30)  # after the module's history: only these rows
    moments = [end - span + HOUR * (i + 1) + 7 * SECOND for i in range(5)]
    save(
        [probe_row(m, "local", True, 30.0, "console") for m in moments]
        + [probe_row(moments[0], "local", True, 3000.0, "bot")]
        + [call_row(m, "local", 900.0, 200.0, "console") for m in moments[:2]]
    )
    buckets = Buckets.for_window(end - span, end)

    bot = series.aggregate(buckets, BOT)
    both = series.aggregate(buckets, BOTH)

    assert set(bot.totals) == {("probe", "local")}
    assert bot.total("probe", "local").count == 1
    assert bot.total("probe", "local").hist == histogram.of([3000.0])
    assert both.total("probe", "local").count == 6
    assert both.total("probe", "local").hist == histogram.of([3000.0] + [30.0] * 5)
    assert (both.total("reply", "local").count, both.total("first_token", "local").count) == (2, 2)


@pytest.mark.django_db
def test_percentiles_of_a_bucket_come_from_its_histogram() -> None:
    tally = Tally()
    for ms in [30.0] * 19 + [9000.0]:
        tally.add(True, ms)

    p50, p95 = series.percentiles(tally)

    assert p50 is not None and 25 <= p50 <= 50
    assert p95 is not None and 25 <= p95 <= 50  # the 19th of 20 is still fast
    assert series.percentiles(Tally()) == (None, None)
