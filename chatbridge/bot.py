"""The bot process, as small steps that `runbot`, `chat` and the tests call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterable, Mapping

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from chatbridge import runtime
from chatbridge.adapters.registry import Adapter
from chatbridge.adapters.relay import Relay
from chatbridge.adapters.setup_watch import SetupWatch
from chatbridge.channel_settings import settings_cache
from chatbridge.first_run import announce, base_url
from chatbridge.moderation.terms import blocked_terms
from chatbridge.runtime import BotRuntime
from chatbridge.webserver import WebServer
from chatbridge.worker import ChatWorker, build_worker
from fallbacks import services as fallbacks
from llm.alerts.loop import run_alerts
from llm.cascade.switches import live_switches
from llm.history.retention import prune_daily
from serdabot.broadcast import listen
from serdabot.database import ping
from serdabot.outage import connection_errors, describe
from serdabot.tasks import cancel_and_wait

log = logging.getLogger("serdabot.bot")

ALL_PLATFORMS = frozenset({"twitch", "discord", "web"})
# Seconds at the end of SHUTDOWN_GRACE (at most a quarter of it) kept for sending replies.
SEND_MARGIN = 2.0


class PendingMigrations(Exception):
    pass


def check_migrations() -> None:
    """Refuse to start on a database the code does not match, with the fix in the message."""
    connection = connections["default"]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    connection.close()
    if plan:
        raise PendingMigrations(
            f"the database needs {len(plan)} migration(s): run `python manage.py migrate` first"
        )


async def start_runtime(process: str) -> BotRuntime:
    bot = BotRuntime.from_settings()
    runtime.install(bot)
    await bot.start(process=process)
    return bot


async def stop_runtime(bot: BotRuntime) -> None:
    await bot.stop()
    runtime.install(None)


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


def reload_budget() -> None:
    """Re-read the OpenAI daily limits the admin edited, in this process's running bot, if any."""
    try:
        bot = runtime.current()
    except RuntimeError:
        return  # an adapter-only process: no LLM service, no budget
    budget = getattr(bot.llm, "budget", None)
    if budget is not None:
        budget.reload_limits()


def start_change_listener(more: Mapping[str, Callable[[], None]] | None = None) -> asyncio.Task[None]:
    """Refresh this process's caches when another process edits phrases, channel settings, the
    budget or the live switches. `more`: other notices to act on (the setup pages')."""
    refreshers = {
        "fallbacks": fallbacks.warm,
        "channels": settings_cache.load,
        "budget": reload_budget,
        "switches": live_switches.refresh,
        "moderation": blocked_terms.load,
        **(more or {}),
    }
    return asyncio.create_task(listen(refreshers), name="change-listener")


def start_pruning(stop: asyncio.Event) -> asyncio.Task[None]:
    """Keep the history within HISTORY_RETENTION_DAYS: once at start, then daily."""
    return asyncio.create_task(prune_daily(stop), name="prune-history")


def start_alerts(stop: asyncio.Event) -> asyncio.Task[None]:
    """Alert the streamer of outages (every bot process runs it; each alert goes out once)."""
    return asyncio.create_task(run_alerts(stop), name="alerts")


def start_worker(worker: ChatWorker | None = None) -> asyncio.Task[None]:
    return asyncio.create_task((worker or build_worker()).arun(), name="chat-worker")


def start_adapters(platforms: Iterable[str], watch: SetupWatch | None = None) -> list[asyncio.Task[None]]:
    """The chat platforms' adapters: the configured ones at once, the others as soon as the setup
    pages configure them (chatbridge/adapters/setup_watch.py). Each runs under its own
    supervisor: one failing never stops the others."""
    watch = watch or SetupWatch(platforms)
    if not watch.platforms:
        return []
    return [
        asyncio.create_task(watch.run(), name="adapters"),
        # Rows saved by another process reach the adapters (channels joined, cooldowns) here too.
        asyncio.create_task(settings_cache.keep_fresh(), name="channel-settings"),
    ]


async def warm_phrases() -> bool:
    """The adapters answer from the phrase cache when the workers cannot (their guard), and
    know the custom commands from it."""
    try:
        await sync_to_async(fallbacks.warm)()
    except Exception as exc:
        # Built-in phrases stand in until the change listener or a restart reloads them.
        log.warning("fallback phrases not loaded (%s): the built-in ones answer meanwhile", describe(exc))
        return False
    return fallbacks.loaded()


async def keep_trying_phrases(first: float = 1.0, cap: float = 30.0) -> None:
    """An adapter-only process whose database was away at start: load the phrases (and so the
    custom commands) once it answers, rather than waiting for someone to edit one. Quiet
    meanwhile: the start said it once."""
    delay = first
    while True:
        await asyncio.sleep(delay)
        delay = min(delay * 2, cap)
        try:
            await sync_to_async(ping, thread_sensitive=True)()
        except connection_errors():
            continue
        if await warm_phrases():
            log.info("fallback phrases and custom commands loaded: the database answers again")
            return


def relays(adapters: Iterable[Adapter]) -> list[Relay]:
    found = [getattr(adapter, "relay", None) for adapter in adapters]
    return [relay for relay in found if isinstance(relay, Relay)]


async def shut_down(
    *,
    adapters: list[Adapter],
    worker: ChatWorker | None,
    grace: float,
) -> None:
    """The graceful part of a stop, within `grace` seconds: adapters stop taking events,
    answers in flight finish and are sent, outbound queues send what the rate limits
    allow. What is left is counted in one line (by the outboxes, as they close)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + grace
    # The end of the grace is kept for sending: answers (the workers', or the adapters'
    # phrases for what they never got) must be queued before it, or they go unsent.
    answer_by = until - min(SEND_MARGIN, grace / 4)
    live = relays(adapters)
    for relay in live:
        relay.stop_taking()
    unfinished = await worker.drain(answer_by) if worker is not None else 0
    if unfinished:
        log.warning(
            "%d answers still being written after %.1f s: not sent",
            unfinished,
            answer_by - (until - grace),
        )
    for relay in live:
        await relay.drain(until, answer_by=answer_by)


async def close_layer() -> None:
    layer = get_channel_layer()
    close = getattr(layer, "close_pools", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()


async def cancel(tasks: Iterable[asyncio.Task[None]]) -> None:
    """Stop `tasks` and wait until they have (see serdabot/tasks.py for why a cancellation is repeated)."""
    await cancel_and_wait(tasks)


async def run_bot(
    *,
    platforms: Iterable[str] = ALL_PLATFORMS,
    host: str = "127.0.0.1",
    port: int = 8000,
    worker: bool = True,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until `stop` is set (SIGINT/SIGTERM set it when not given).

    `platforms` names the adapters and the web server to run; `worker` runs the
    handler. In a multi-process layout, one process runs the adapters and any
    number run workers (see the README).
    """
    platforms = set(platforms)
    if stop is None:
        stop = asyncio.Event()
        install_stop_signals(stop)
    # The LLM service (boot detection, probes) lives where messages are answered.
    bot = await start_runtime("runbot") if worker else None
    chat_worker = build_worker() if worker else None
    tasks = [start_worker(chat_worker), start_pruning(stop)] if chat_worker is not None else []
    # The setup pages are on this process's web server, when it runs one.
    watch = SetupWatch(platforms, setup_url=base_url(host, port) + "/" if "web" in platforms else "")
    if watch.platforms and bot is None and not await warm_phrases():
        tasks.append(asyncio.create_task(keep_trying_phrases(), name="phrases-retry"))
    tasks += start_adapters(platforms, watch)
    if chat_worker is not None or watch.platforms:
        tasks.append(start_alerts(stop))
    # Workers (handler) and adapters (cooldowns, enabled commands) both cache what the
    # admin edits in another process; the adapters start when the setup pages say so.
    tasks.append(start_change_listener(watch.refreshers()))
    web: WebServer | None = None
    if "web" in platforms:
        web = WebServer(host, port)
        tasks.append(asyncio.create_task(web.serve(), name="web"))
        await announce(host, port)
    try:
        await _until(stop, tasks)
    finally:
        log.info("Stopping...")
        # In order: no new events, answers in flight finished and sent, then the parts
        # they use: the web, the tasks, the LLM clients and history (flushed), the layer.
        try:
            await shut_down(adapters=watch.adapters(), worker=chat_worker, grace=settings.SHUTDOWN_GRACE)
        except Exception:
            log.exception("graceful shutdown failed; stopping now")
        if web is not None:
            web.stop()
        await cancel(tasks)
        if bot is not None:
            await stop_runtime(bot)
        await close_layer()
        log.info("Stopped.")


async def _until(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Wait for the stop signal; a part that dies on its own stops the process too."""
    waiter: asyncio.Task[bool] = asyncio.create_task(stop.wait())
    essential = [t for t in tasks if t.get_name() in ("chat-worker", "web")]
    done, _ = await asyncio.wait([waiter, *essential], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    for task in done:
        if task is not waiter and not task.cancelled() and (error := task.exception()) is not None:
            raise error
