"""The OpenAI tier's daily budget: limits, local midnight, admin edits, restarts, Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import sync_to_async
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer
from django.contrib.auth.models import User
from django.test import Client

from chatbridge import runtime
from chatbridge.bot import cancel, start_change_listener
from chatbridge.handler import Handler
from chatbridge.runtime import BotRuntime
from llm.cascade.budget import REDIS_RETRY, DailyBudget
from llm.history.recorder import HistoryRecorder
from llm.models import BudgetSettings, ModelPrice, Usage
from tests.conftest import disabled_llm
from tests.llm_helpers import eventually, rows
from tests.services import redis_url
from tests.subprocesses import free_port

PARIS = ZoneInfo("Europe/Paris")


class Clock:
    """The budget's wall clock, moved by the test: local (Paris) time, aware."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


class Told:
    """The budget's listener: every (state, detail) it was told, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __call__(self, state: str, detail: str) -> None:
        self.calls.append((state, detail))

    @property
    def states(self) -> list[str]:
        return [state for state, _ in self.calls]


def afternoon() -> Clock:
    return Clock(datetime(2026, 3, 14, 15, 0, tzinfo=PARIS))


async def spend(budget: DailyBudget, times: int = 1, *, prompt: int = 10, answer: int = 5) -> None:
    for _ in range(times):
        await budget.record(model="gpt-4o-mini", prompt_tokens=prompt, completion_tokens=answer)


def warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


# -- one process --------------------------------------------------------------------------


async def test_it_refuses_once_the_daily_requests_are_spent_and_tells_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, told = afternoon(), Told()
    budget = DailyBudget(requests=3, tokens=None, now=clock, listener=told)

    for _ in range(3):
        assert await budget.allows()
        await spend(budget)
        clock.advance(timedelta(minutes=5))

    with caplog.at_level(logging.INFO, logger="llm.budget"):
        assert not await budget.allows()
        assert not await budget.allows()
    assert budget.exhausted
    assert told.states == ["budget"]
    assert "3/3 requests" in told.calls[0][1]
    today = budget.today()
    assert (today.requests, today.tokens, today.request_limit, today.token_limit) == (3, 45, 3, None)


async def test_it_logs_one_warning_a_day_however_many_messages_it_refuses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = afternoon()
    budget = DailyBudget(requests=1, tokens=None, now=clock)

    with caplog.at_level(logging.INFO, logger="llm.budget"):
        await spend(budget)
        for _ in range(20):
            assert not await budget.allows()

    assert len(warnings(caplog, "daily budget reached")) == 1


async def test_the_token_limit_counts_prompt_and_answer() -> None:
    told = Told()
    budget = DailyBudget(requests=None, tokens=100, now=afternoon(), listener=told)

    await spend(budget, prompt=60, answer=30)
    assert await budget.allows()
    assert told.states == []

    await spend(budget, prompt=8, answer=4)  # 102: this request crossed the limit
    assert not await budget.allows()
    assert told.states == ["budget"]


async def test_the_next_local_midnight_resets_the_counts_and_tells_up() -> None:
    clock, told = Clock(datetime(2026, 3, 14, 23, 50, tzinfo=PARIS)), Told()
    budget = DailyBudget(requests=2, tokens=None, now=clock, listener=told)
    await spend(budget, 2)
    assert not await budget.allows()

    clock.advance(timedelta(minutes=9, seconds=59))  # 23:59:59, still the same local day
    assert not await budget.allows()
    clock.advance(timedelta(seconds=1))  # 00:00:00 in Paris (23:00 UTC: midnight is local)
    assert await budget.allows()

    assert told.states == ["budget", "up"]
    assert not budget.exhausted
    today = budget.today()
    assert (str(today.date), today.requests, today.tokens) == ("2026-03-15", 0, 0)
    await spend(budget)
    assert await budget.allows()
    await spend(budget)
    assert not await budget.allows()
    assert told.states == ["budget", "up", "budget"]


async def test_a_day_with_no_limit_reached_rolls_over_silently() -> None:
    clock, told = afternoon(), Told()
    budget = DailyBudget(requests=5, tokens=None, now=clock, listener=told)
    await spend(budget, 4)

    clock.advance(timedelta(days=1))
    assert await budget.allows()

    assert told.states == []
    assert budget.today().requests == 0


async def test_a_listener_that_fails_does_not_stop_the_budget(caplog: pytest.LogCaptureFixture) -> None:
    def broken(state: str, detail: str) -> None:
        raise RuntimeError("bug in the caller")

    budget = DailyBudget(requests=1, tokens=None, now=afternoon(), listener=broken)

    with caplog.at_level(logging.ERROR, logger="llm.budget"):
        await spend(budget)
        assert not await budget.allows()

    assert "state listener failed" in caplog.text


@pytest.mark.django_db(transaction=True)
async def test_tokens_are_estimated_from_the_text_when_the_server_reports_none() -> None:
    recorder = HistoryRecorder(use_default_layer=False)
    budget = DailyBudget(requests=None, tokens=None, now=afternoon(), recorder=recorder)

    await budget.record(
        model="gpt-4o-mini",
        prompt_tokens=None,
        completion_tokens=None,
        prompt_text="x" * 10,  # ceil(10 / 4) = 3
        answer_text="y" * 8,  # 2
    )
    await budget.record(model="gpt-4o-mini", prompt_tokens=120, completion_tokens=30)
    await recorder.flush()

    assert budget.today().tokens == 3 + 2 + 150
    estimated, reported = await rows(Usage)
    assert (estimated.tier, estimated.model, estimated.prompt_tokens, estimated.completion_tokens) == (
        "openai",
        "gpt-4o-mini",
        3,
        2,
    )
    assert not estimated.reported
    assert (reported.prompt_tokens, reported.completion_tokens, reported.reported) == (120, 30, True)


@pytest.mark.django_db(transaction=True)
async def test_an_admin_limit_replaces_the_environment_without_a_restart() -> None:
    told = Told()
    budget = DailyBudget(requests=10, tokens=None, now=afternoon(), listener=told)
    await budget.start()
    await spend(budget, 3)
    assert await budget.allows()

    settings_row = await BudgetSettings.objects.acreate(daily_requests=3)
    await sync_to_async(budget.reload_limits)()
    assert budget.today().request_limit == 3
    assert not await budget.allows()

    settings_row.daily_requests = 5  # raised the same day: OpenAI answers again
    await settings_row.asave()
    await sync_to_async(budget.reload_limits)()
    assert await budget.allows()

    settings_row.daily_requests = None  # emptied: the environment's limit again
    await settings_row.asave()
    await sync_to_async(budget.reload_limits)()
    assert budget.today().request_limit == 10
    assert told.states == ["budget", "up"]


@pytest.mark.django_db(transaction=True)
async def test_removing_every_limit_makes_openai_usable_again() -> None:
    told = Told()
    await BudgetSettings.objects.acreate(daily_requests=1)
    budget = DailyBudget(requests=None, tokens=None, now=afternoon(), listener=told)
    await budget.start()
    await spend(budget)
    assert not await budget.allows()

    await BudgetSettings.objects.aupdate(daily_requests=None)
    await sync_to_async(budget.reload_limits)()

    assert await budget.allows()
    assert not budget.exhausted
    assert told.states == ["budget", "up"]


@pytest.mark.django_db(transaction=True)
async def test_a_restart_keeps_todays_usage_from_the_database() -> None:
    clock = afternoon()
    midnight = datetime(2026, 3, 14, 0, 0, tzinfo=PARIS)
    await Usage.objects.abulk_create(
        [
            Usage(
                created=midnight, tier="openai", model="gpt-4o-mini", prompt_tokens=100, completion_tokens=20
            ),
            Usage(created=clock() - timedelta(hours=1), tier="openai", prompt_tokens=7, completion_tokens=3),
            # Not today's: one second before local midnight, and the local tier's.
            Usage(created=midnight - timedelta(seconds=1), tier="openai", prompt_tokens=900),
            Usage(created=clock(), tier="local", prompt_tokens=900),
        ]
    )
    told = Told()
    budget = DailyBudget(requests=3, tokens=None, now=clock, listener=told)

    await budget.start()

    today = budget.today()
    assert (today.requests, today.tokens) == (2, 130)
    assert await budget.allows()
    await spend(budget)
    assert not await budget.allows()
    assert told.states == ["budget"]


@pytest.mark.django_db(transaction=True)
async def test_a_budget_spent_before_the_restart_stays_spent(caplog: pytest.LogCaptureFixture) -> None:
    clock = afternoon()
    await BudgetSettings.objects.acreate(daily_tokens=100)
    await Usage.objects.acreate(created=clock(), tier="openai", prompt_tokens=90, completion_tokens=10)
    told = Told()
    budget = DailyBudget(requests=None, tokens=None, now=clock, listener=told)

    with caplog.at_level(logging.INFO, logger="llm.budget"):
        await budget.start()

    assert budget.exhausted
    assert budget.today().token_limit == 100
    assert not await budget.allows()
    # Told by the run that spent it; this one only says why OpenAI is skipped.
    assert told.states == []
    assert len(warnings(caplog, "already reached")) == 1


async def test_it_starts_from_zero_when_the_database_cannot_be_read(caplog: pytest.LogCaptureFixture) -> None:
    # No django_db mark: pytest-django refuses every query, as a database that is down would.
    budget = DailyBudget(requests=2, tokens=None, now=afternoon())

    with caplog.at_level(logging.WARNING, logger="llm.budget"):
        await budget.start()

    assert budget.today().requests == 0
    assert await budget.allows()
    assert len(warnings(caplog, "could not read today's usage")) == 1


# -- the admin, end to end --------------------------------------------------------------


@pytest.fixture
def in_memory_layer(settings: Any) -> Iterator[None]:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    yield
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)


@pytest.fixture
async def running_budget(in_memory_layer: None) -> AsyncIterator[DailyBudget]:
    """A bot runtime whose LLM service holds a budget, and this process's change listener."""
    budget = DailyBudget(requests=None, tokens=None)
    llm = disabled_llm()
    # Until the cascade owns one, the budget is hung where chatbridge.bot looks for it.
    setattr(llm, "budget", budget)  # noqa: B010
    runtime.install(BotRuntime(llm, Handler(llm)))
    listener = start_change_listener()
    await eventually(lambda: get_channel_layer().groups, within=5)  # subscribed
    yield budget
    await cancel([listener])
    runtime.install(None)


def save_in_admin(path: str, data: dict[str, str]) -> int:
    client = Client()
    client.force_login(User.objects.create_superuser("streamer", password="x"))
    return client.post(path, data).status_code


@pytest.mark.django_db(transaction=True)
async def test_a_limit_saved_in_the_admin_reaches_the_running_bot(running_budget: DailyBudget) -> None:
    status = await sync_to_async(save_in_admin)(
        "/admin/llm/budgetsettings/add/", {"daily_requests": "2", "daily_tokens": ""}
    )

    assert status == 302
    await eventually(lambda: running_budget.today().request_limit == 2, within=5)
    assert running_budget.today().token_limit is None


@pytest.mark.django_db
def test_the_admin_keeps_a_single_budget_row(admin_client: Client) -> None:
    assert admin_client.get("/admin/llm/budgetsettings/add/").status_code == 200
    row = BudgetSettings.objects.create(daily_requests=100)

    assert admin_client.get("/admin/llm/budgetsettings/add/").status_code == 403
    assert admin_client.get(f"/admin/llm/budgetsettings/{row.pk}/delete/").status_code == 403
    response = admin_client.post(
        f"/admin/llm/budgetsettings/{row.pk}/change/", {"daily_requests": "", "daily_tokens": "5000"}
    )
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.daily_requests, row.daily_tokens) == (None, 5000)


@pytest.mark.django_db
def test_editing_the_price_list_sends_one_notice(
    admin_client: Client, in_memory_layer: None, django_capture_on_commit_callbacks: Any
) -> None:
    from asgiref.sync import async_to_sync

    from serdabot.broadcast import GROUP

    mini, nano = ModelPrice.objects.filter(model__in=["gpt-4o-mini", "gpt-4.1-nano"]).order_by("model")
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(GROUP, channel)
    form = {
        "form-TOTAL_FORMS": "2",
        "form-INITIAL_FORMS": "2",
        "form-0-id": str(nano.pk),
        "form-0-input_per_million": "0.12",
        "form-0-output_per_million": "0.48",
        "form-1-id": str(mini.pk),
        "form-1-input_per_million": "0.20",
        "form-1-output_per_million": "0.80",
        "_save": "Save",
    }

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/llm/modelprice/?model__in=gpt-4.1-nano,gpt-4o-mini", form)

    assert response.status_code == 302
    mini.refresh_from_db()
    assert mini.input_per_million == Decimal("0.20")
    async_to_sync(layer.send)(channel, {"type": "test.end"})
    assert async_to_sync(layer.receive)(channel) == {"type": "config.changed", "what": "budget"}
    assert async_to_sync(layer.receive)(channel)["type"] == "test.end"  # one notice for both rows


def test_reload_does_nothing_without_a_running_bot() -> None:
    from chatbridge.bot import reload_budget

    runtime.install(None)
    reload_budget()  # an adapter-only process: no runtime, nothing to reload
    llm = disabled_llm()
    runtime.install(BotRuntime(llm, Handler(llm)))
    try:
        reload_budget()  # a runtime whose LLM service has no budget
    finally:
        runtime.install(None)


# -- several processes: Redis ------------------------------------------------------------


@pytest.fixture
async def shared() -> AsyncIterator[list[DailyBudget]]:
    """Budgets to close at the end of the test (their Redis clients belong to its loop)."""
    budgets: list[DailyBudget] = []
    yield budgets
    for budget in budgets:
        await budget.aclose()


@pytest.mark.services
async def test_two_workers_share_one_budget_through_redis(shared: list[DailyBudget]) -> None:
    url = redis_url()
    clock, told = afternoon(), Told()
    first = DailyBudget(requests=3, tokens=None, redis_url=url, now=clock, listener=told)
    second = DailyBudget(requests=3, tokens=None, redis_url=url, now=clock, listener=told)
    shared += [first, second]

    await spend(first, 2)
    assert await second.allows()
    await spend(second)

    assert not await first.allows()
    assert not await second.allows()
    assert first.today().requests == second.today().requests == 3
    assert first.today().tokens == 45
    assert told.states == ["budget"]  # one listener call for both workers

    clock.advance(timedelta(days=1))
    assert await first.allows()
    assert await second.allows()
    assert told.states == ["budget", "up"]
    assert second.today().requests == 0


@pytest.mark.services
async def test_a_worker_started_later_sees_the_shared_counts(shared: list[DailyBudget]) -> None:
    url = redis_url()
    clock = afternoon()
    first = DailyBudget(requests=None, tokens=1000, redis_url=url, now=clock)
    shared.append(first)
    await spend(first, 3, prompt=100, answer=50)  # not in the database: no recorder

    later = DailyBudget(requests=None, tokens=1000, redis_url=url, now=clock)
    shared.append(later)
    await later.start()

    assert later.today().tokens == 450


@pytest.mark.services
async def test_counters_redis_lost_are_put_back_from_what_a_worker_knows(shared: list[DailyBudget]) -> None:
    import redis

    url = redis_url()
    clock = afternoon()
    first = DailyBudget(requests=4, tokens=None, redis_url=url, now=clock)
    shared.append(first)
    await spend(first, 3)

    client = redis.Redis.from_url(url)
    client.flushdb()  # Redis restarted without persistence
    client.close()
    assert await first.allows()

    later = DailyBudget(requests=4, tokens=None, redis_url=url, now=clock)
    shared.append(later)
    assert await later.allows()
    assert later.today().requests == 3


class Proxy:
    """A TCP relay on 127.0.0.1 in front of Redis, to cut and restore the connection."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()
        self.writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, upstream_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


@pytest.mark.services
async def test_counts_made_while_redis_was_away_reach_it_when_it_answers(
    shared: list[DailyBudget], caplog: pytest.LogCaptureFixture
) -> None:
    from urllib.parse import urlsplit

    url = redis_url()
    parts = urlsplit(url)
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 6379))
    await proxy.open()
    clock = afternoon()
    cut_off = DailyBudget(
        requests=5, tokens=None, redis_url=f"redis://127.0.0.1:{proxy.port}{parts.path}", now=clock
    )
    direct = DailyBudget(requests=5, tokens=None, redis_url=url, now=clock)
    shared += [cut_off, direct]
    await spend(cut_off)

    await proxy.close()
    with caplog.at_level(logging.INFO, logger="llm.budget"):
        await spend(cut_off, 2)  # counted in its own process meanwhile
        assert await cut_off.allows()
        assert cut_off.today().requests == 3
        await spend(direct)  # the other worker still counts in Redis
        assert direct.today().requests == 2

        await proxy.open()
        assert await cut_off.allows()  # Redis failed less than REDIS_RETRY ago: not asked yet
        assert await direct.allows()
        assert direct.today().requests == 2
        clock.advance(REDIS_RETRY)
        assert await cut_off.allows()  # asks Redis again, and hands it the two it missed
        assert cut_off.today().requests == 3 + 1

    assert await direct.allows()
    assert direct.today().requests == 4
    assert len(warnings(caplog, "Redis unreachable")) == 1
    assert "Redis answers again" in caplog.text
    await spend(direct)
    assert not await cut_off.allows()
    await proxy.close()


async def test_an_unreachable_redis_falls_back_to_this_process_with_one_log_line(
    shared: list[DailyBudget], caplog: pytest.LogCaptureFixture
) -> None:
    clock, told = afternoon(), Told()
    budget = DailyBudget(
        requests=3, tokens=None, redis_url=f"redis://127.0.0.1:{free_port()}/0", now=clock, listener=told
    )
    shared.append(budget)

    with caplog.at_level(logging.INFO, logger="llm.budget"):
        for _ in range(3):
            assert await budget.allows()
            await spend(budget)
            clock.advance(REDIS_RETRY)  # each call asks the closed port again
        assert not await budget.allows()

    assert len(warnings(caplog, "Redis unreachable")) == 1
    assert budget.today().requests == 3
    assert told.states == ["budget"]  # told without Redis to deduplicate it
