"""Benchmark: chat events per second through adapter -> layer -> worker -> handler -> reply.

Each scenario runs in a fresh child process (its own SQLite history, its own layer):

  a-relay   ordinary chat that needs no reply, through the adapters' real entry point
            (`Relay.incoming`): it is recognised there, with the handler's own parser,
            and never crosses the layer.
  a-layer   the same chat forced through the layer and the worker's handler (what a
            console or web-chat line costs), acknowledged every 500 events.
  b         `!ask` answered by a fallback phrase while the LLM is down (nothing listens
            on LLM_ENDPOINT, so boot detection marks it down): Relay -> layer -> worker
            -> handler -> history recorder -> reply -> outbound queue -> sent.
  b-guarded the same !ask, in one process, in alternating slices: with 1,000 blocked terms
            (every one also checked against the question) and conversation memory on, and with
            both off; three such children, the median one's ratio judged. Issue 12: the first
            keeps >= 90% of the second's replies per second.
            (Separate runs were compared first: on this VM two runs of one scenario differ by
            up to a third, so the slices share whatever the machine does meanwhile.)
  memory    1,000,000 events (9 ordinary lines for each `!ask`), every one from a new
            user: resident memory after 10,000 and after 1,000,000 events, on a channel
            without cooldowns (the pipeline's own state: claims, history, layer) and on one
            with a 30 s cooldown per user (the worst case for per-user state: every reply
            starts a cooldown for someone new, so the table fills to its 10,000-user bound).
  memory-channels
            the same 1,000,000 events, each in another of 100,000 channels that have no
            settings row (as Discord threads and DMs): every !ask opens a reply queue for a
            channel that then goes quiet, takes a slot of the default 5 s channel cooldown
            and looks its settings up. No cooldown per user here (memory-cooldowns shows
            that one): the figure is the per-channel state, which must stay bounded.

Run on the in-memory layer and, with --redis URL (or REDIS_URL), on channels_redis:

    .venv/bin/python bench/throughput.py [--redis redis://127.0.0.1:6379/0] [--quick]
    .venv/bin/python bench/throughput.py --redis redis://127.0.0.1:6379/0 --only b:redis

`--only` takes scenarios (`b`, `memory-channels`) or one scenario on one layer (`b:redis`).

Targets (issue 6, 2-core machine): (a) >= 20,000 events/s in memory; (b) >= 2,000
replies/s in memory and >= 500/s on Redis; memory growth < 10%. Issue 10: growth < 10%
over 100,000 channels too, and (b) on Redis no lower than 591 replies/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import benchenv  # bench/ is on sys.path when a benchmark runs as a script

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    ("a-relay", "memory"): 20_000,
    ("a-layer", "memory"): 20_000,
    ("b", "memory"): 2_000,
    ("b", "redis"): 591,  # issue 10: no lower than issue 6's figure
}
# Issue 12: with 1,000 blocked terms and memory on, at least this share of b's rate.
GUARDED_RATIO = 90
# memory-cooldowns: every !ask starts a 30 s cooldown for a user never seen before, so the
# cooldown table fills to its bound (10,000 users) and then forgets the oldest.
USER_COOLDOWN = {"memory-cooldowns": 30}
CHECKPOINTS = (10_000, 100_000, 250_000, 500_000, 750_000)
CHANNELS = 100_000  # memory-channels: the distinct channels the events cycle through
MEMORY_SCENARIOS = (
    ("memory", "no cooldowns", True),
    ("memory-cooldowns", "30 s per user (worst case)", False),
    ("memory-channels", "100,000 channels without a row, 5 s per channel", True),
)
WINDOW = 500  # replies in flight at once, as a busy chat would have
# Worker processes beside the adapter process on Redis (a second one adds little on
# two cores: channels_redis's serial receives and the extra claims cancel it out).
WORKERS = 1


# -- child: one scenario ------------------------------------------------------------------


def setup_django(local_dir: str, redis_url: str, user_cooldown: int = 0, scenario: str = "") -> None:
    # Nothing listens on port 9 here: the LLM is down, so every !ask gets a fallback phrase.
    os.environ["LLM_ENDPOINT"] = "http://127.0.0.1:9/v1"
    os.environ.pop("OPENAI_API_KEY", None)
    # Conversation memory only where it is measured (b-guarded switches it per slice).
    os.environ["MEMORY_TURNS"] = "6" if scenario == "b-guarded" else "0"
    benchenv.setup_django(local_dir, redis_url)
    if scenario == "b-guarded":
        add_blocked_terms(1_000)
    from chatbridge.models import ChannelSettings

    # Room for every reply, and no cooldowns unless asked: this measures the pipeline, not
    # the chat policy (the tests cover cooldowns and rate limits).
    ChannelSettings.objects.create(
        platform="twitch",
        channel="bench",
        user_cooldown=user_cooldown,
        channel_cooldown=0,
        reply_queue_limit=100_000,
    )


def add_blocked_terms(count: int) -> None:
    """`count` blocked terms, every one checked against questions too: the worst case for
    the question check each !ask goes through. About one in ten is a regular expression."""
    from chatbridge.moderation.models import BlockedTerm

    BlockedTerm.objects.bulk_create(
        BlockedTerm(
            term=rf"interdit{i}\w*" if i % 10 == 0 else f"motbloque{i}",
            regex=i % 10 == 0,
            check_questions=True,
        )
        for i in range(count)
    )


async def channels_without_user_cooldown() -> Any:
    """Settings for memory-channels: a channel without a row gets the defaults, but no
    cooldown per user (that table's bound is memory-cooldowns' figure, not this one's)."""
    import dataclasses

    from chatbridge.channel_settings import ChannelConfig, ChannelSettingsCache, defaults

    class WithoutUserCooldown(ChannelSettingsCache):
        fallback = dataclasses.replace(defaults(), user_cooldown=0.0)

        def get(self, platform: str, channel: str) -> ChannelConfig:
            config = super().get(platform, channel)
            return self.fallback if config is defaults() else config

    cache = WithoutUserCooldown()
    await cache.refresh()
    return cache


def channel_of(i: int) -> str:
    # Shifted by one at each pass, so the !ask (every 10th event) reach every channel in turn.
    return f"c{(i + i // CHANNELS) % CHANNELS}"


def rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


class Sink:
    """The platform edge: counts what the outbound queues hand to the platform."""

    def __init__(self) -> None:
        self.sent = 0
        self.window = asyncio.Semaphore(WINDOW)
        self._goal = 0
        self._reached = asyncio.Event()

    async def send(self, message: Any) -> None:
        self.sent += 1
        self.window.release()
        if self.sent >= self._goal:
            self._reached.set()

    async def until(self, count: int) -> None:
        """Wait until `count` replies in all have reached the platform."""
        self._goal = count
        self._reached.clear()
        if self.sent < count:
            await self._reached.wait()


async def run(scenario: str, events: int) -> dict[str, Any]:
    from chatbridge.bot import start_runtime
    from chatbridge.channel_settings import settings_cache

    await settings_cache.refresh()
    bot = await start_runtime("bench")
    # On Redis the worker is its own process, as deployed (Procfile): adapters in one
    # process, workers in another, each with a core of its own.
    workers = [start_worker_process() for _ in range(WORKERS)] if os.environ.get("REDIS_URL") else []
    try:
        return await measure(scenario, events, bot, workers)
    finally:
        for process in workers:
            process.terminate()
            process.wait(timeout=30)


async def measure(
    scenario: str, events: int, bot: Any, workers: list[subprocess.Popen[bytes]]
) -> dict[str, Any]:
    from chatbridge.adapters.base import LayerClient
    from chatbridge.adapters.relay import Relay
    from chatbridge.adapters.status import AdapterStatus
    from chatbridge.bot import cancel, start_worker, stop_runtime
    from chatbridge.config import RateLimit
    from chatbridge.events import ChatEvent

    worker = None if workers else start_worker()
    if workers:
        await wait_for_worker()
    sink = Sink()
    spread = scenario == "memory-channels"
    extra: dict[str, Any] = {"settings": await channels_without_user_cooldown()} if spread else {}
    relay = Relay(
        "twitch",
        send=sink.send,
        # No platform limit here (the tests cover those); a short window keeps its log small.
        rate=lambda channel: RateLimit(10**9, 1.0),
        status=AdapterStatus("twitch"),
        bot_names=("serdabot",),
        **extra,
    )
    router = asyncio.create_task(relay.run())
    result: dict[str, Any] = {"scenario": scenario, "events": events}

    run_id = uuid.uuid4().hex[:8]  # message ids are claimed for an hour on Redis: never reuse them

    def chat(i: int, text: str) -> ChatEvent:
        channel = channel_of(i) if spread else "bench"
        return ChatEvent("twitch", channel, f"user{i}", text, message_id=f"{run_id}-{i}", user_id=str(i))

    started = time.perf_counter()
    if scenario == "a-relay":
        for i in range(events):
            await relay.incoming(chat(i, "gg wp, quel clutch"))
    elif scenario == "a-layer":
        client = LayerClient()
        for i in range(events):
            await client.submit(chat(i, "gg wp, quel clutch"))
            if i % 500 == 499 or i == events - 1:
                # An acknowledged line behind them: the worker handles in order.
                await client.submit(chat(-1, "sync"), ack=True)
                await client.receive()
    elif scenario == "b":
        for i in range(events):
            await sink.window.acquire()
            await relay.incoming(chat(i, "!ask c'est quoi Python ?"))
        await sink.until(events)
    elif scenario == "b-guarded":
        result.update(await guarded_against_plain(relay, sink, bot, chat, events))
    elif scenario.startswith("memory"):
        answered = 0  # !ask that get a reply: one a cooldown turns away gets none
        for i in range(events):
            if i % 10 == 9:
                await sink.window.acquire()
                refused = relay.status.cooldown_hits
                await relay.incoming(chat(i, "!ask ça dit quoi ?"))
                if relay.status.cooldown_hits > refused:
                    sink.window.release()
                else:
                    answered += 1
            else:
                await relay.incoming(chat(i, "salut tout le monde"))
            # Chat arrives from the network one line per callback: let the loop run between
            # lines, as it does in production, so background work (history) keeps pace.
            await asyncio.sleep(0)
            if i + 1 in CHECKPOINTS:
                await sink.until(answered)
                await bot.llm.recorder.flush()
                result.setdefault("rss_mb", {})[i + 1] = round(rss_mb(), 1)
                # Outbox tasks among them: a reply queue that never closes shows here.
                result.setdefault("tasks", {})[i + 1] = len(asyncio.all_tasks())
        await sink.until(answered)
        await bot.llm.recorder.flush()
        result["rss_end_mb"] = rss_mb()
        result["tasks_end"] = len(asyncio.all_tasks())
        result["rss_10k_mb"] = result["rss_mb"][10_000]
        result["cooldown_entries"] = len(relay.cooldowns)
        result["refused"] = events // 10 - answered
    elapsed = time.perf_counter() - started
    result.update(seconds=round(elapsed, 3), per_second=round(events / elapsed), replies=sink.sent)
    result["history_dropped"] = bot.llm.recorder.dropped
    await cancel([router] + ([worker] if worker else []))
    await stop_runtime(bot)
    return result


def term_rows() -> list[Any]:
    """The blocked terms add_blocked_terms stored, as the snapshot takes them."""
    from chatbridge.moderation.models import BlockedTerm
    from chatbridge.moderation.terms import TermRow

    fields = ("term", "platform", "channel", "regex", "check_questions", "pk")
    return [TermRow(*values) for values in BlockedTerm.objects.values_list(*fields)]


async def guarded_against_plain(relay: Any, sink: Sink, bot: Any, chat: Any, events: int) -> dict[str, Any]:
    """`!ask` answered by a phrase with 1,000 blocked terms and memory on, and with both off,
    in one process, in alternating slices (on, off, off, on, ...): a neighbour slowing the
    machine for a while costs both sides alike, which separate runs cannot promise here."""
    from chatbridge.memory import InProcessMemory
    from chatbridge.moderation.terms import blocked_terms

    handler = bot.handler
    rows = await asyncio.to_thread(term_rows)  # read once: switching sides touches no database
    sides: dict[str, tuple[Any, Any]] = {
        "on": (lambda: blocked_terms.use(rows), InProcessMemory(turns=6)),
        "off": (lambda: blocked_terms.use([]), InProcessMemory(turns=0)),
    }
    seconds = {"on": 0.0, "off": 0.0}
    done = {"on": 0, "off": 0}
    rates: list[str] = []
    slices = 20
    size = max(events // slices, 1)
    n = 0
    # Untimed first: the first replies of a process pay for warming up (first calls, caches),
    # which would all land on the first slice's side.
    for _ in range(size):
        await sink.window.acquire()
        await relay.incoming(chat(n, "!ask c'est quoi Python ?"))
        n += 1
    await sink.until(n)
    for turn in range(slices):
        side = ("on", "off", "off", "on")[turn % 4]
        use_terms, memory = sides[side]
        use_terms()
        handler.memory = memory
        started = time.perf_counter()
        for _ in range(size):
            await sink.window.acquire()
            await relay.incoming(chat(n, "!ask c'est quoi Python ?"))
            n += 1
        await sink.until(n)
        took = time.perf_counter() - started
        seconds[side] += took
        done[side] += size
        rates.append(f"{side} {size / took:,.0f}")
    return {
        "guarded_per_second": round(done["on"] / seconds["on"]),
        "plain_per_second": round(done["off"] / seconds["off"]),
        "slices": rates,
    }


def start_worker_process() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runbot", "--no-web", "--no-adapters"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_for_worker() -> None:
    from chatbridge.adapters.base import LayerClient
    from chatbridge.events import ChatEvent

    client = LayerClient()
    await client.submit(ChatEvent("console", "bench", "bench", "ready?", message_id="ready"), ack=True)
    await asyncio.wait_for(client.receive(), 60)


def child(scenario: str, events: int, redis_url: str) -> None:
    # SIGTERM (a timeout) must still run the finally blocks that stop worker processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    with tempfile.TemporaryDirectory(prefix="serdabot-bench-") as local_dir:
        setup_django(local_dir, redis_url, USER_COOLDOWN.get(scenario, 0), scenario)
        if redis_url:
            from asgiref.sync import async_to_sync
            from channels.layers import get_channel_layer

            async_to_sync(get_channel_layer().flush)()
        result = asyncio.run(run(scenario, events))
    print(json.dumps(result))


# -- parent: every scenario, one table --------------------------------------------------------


def spawn(scenario: str, events: int, redis_url: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", scenario, "--events", str(events)]
    if redis_url:
        command += ["--redis", redis_url]
    # The bot logs one line per fallback, as in production; the table is what matters here.
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{scenario} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", ""), help="channels_redis URL")
    parser.add_argument("--quick", action="store_true", help="fewer events (a smoke run, not the figures)")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated scenarios to run (a-relay, a-layer, b, memory, memory-cooldowns, "
        "memory-channels), or one on one layer (b:redis)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.events, args.redis)
        return

    scale = 10 if args.quick else 1
    plan = [
        ("a-relay", "memory", 400_000 // scale),
        ("a-layer", "memory", 200_000 // scale),
        ("b", "memory", 40_000 // scale),
    ]
    if args.redis:
        plan += [("a-layer", "redis", 40_000 // scale), ("b", "redis", 10_000 // scale)]
    only = {item.strip() for item in args.only.split(",") if item.strip()}

    def wanted(scenario: str, layer: str) -> bool:
        return not only or scenario in only or f"{scenario}:{layer}" in only

    plan = [step for step in plan if wanted(step[0], step[1])]
    memory_plan = [m for m in MEMORY_SCENARIOS if wanted(m[0], "memory")]
    ratio = wanted("b-guarded", "memory")
    if not plan and not memory_plan and not ratio:
        raise SystemExit(f"--only {args.only}: no such scenario (see --help)")
    ok = True
    details: list[str] = []
    if plan:
        ok = run_plan(plan, args.redis)
    if ratio:
        ok &= run_ratio(40_000 // scale)
    if memory_plan:
        ok &= run_memory(memory_plan, 100_000 if args.quick else 1_000_000, details)
    for line in details:
        print(line)
    sys.exit(0 if ok else 1)


def run_plan(plan: list[tuple[str, str, int]], redis_url: str) -> bool:
    print("| scenario | layer | events | seconds | per second | target | |")
    print("|---|---|---:|---:|---:|---:|---|")
    ok = True
    for scenario, layer, events in plan:
        result = spawn(scenario, events, redis_url if layer == "redis" else "")
        target = TARGETS.get((scenario, layer))
        passed = target is None or result["per_second"] >= target
        ok &= passed
        print(
            f"| {scenario} | {layer} | {events:,} | {result['seconds']} | {result['per_second']:,} "
            f"| {f'>= {target:,}' if target else '-'} | {('PASS' if passed else 'FAIL') if target else '-'} |"
        )
    print()
    return ok


def run_ratio(events: int, children: int = 3) -> bool:
    """b-guarded: replies per second with 1,000 blocked terms and memory on, against both off,
    each child measuring both in alternating slices (see guarded_against_plain); the verdict
    is the median child's, as one child can still draw a noisy minute."""
    ratios: list[float] = []
    for _ in range(children):
        result = spawn("b-guarded", events, "")
        guarded, plain = result["guarded_per_second"], result["plain_per_second"]
        ratios.append(guarded / plain * 100)
        print(
            f"b-guarded: {events:,} `!ask` answered by phrases in alternating slices: {guarded:,} replies/s "
            f"with 1,000 blocked terms and memory on, {plain:,} with both off = {ratios[-1]:.1f}%"
        )
    ratio = statistics.median(ratios)
    passed = ratio >= GUARDED_RATIO
    print(
        f"b-guarded, median of {children}: {ratio:.1f}% "
        f"(target >= {GUARDED_RATIO}%): {'PASS' if passed else 'FAIL'}"
    )
    print()
    return passed


def run_memory(scenarios: list[tuple[str, str, bool]], memory_events: int, details: list[str]) -> bool:
    print(f"memory (in-memory layer, {memory_events:,} events, every one from a new user):")
    print()
    print(f"| channel | RSS after 10,000 | after 100,000 | after {memory_events:,} | growth | target | |")
    print("|---|---:|---:|---:|---:|---:|---|")
    ok = True
    for scenario, label, gated in scenarios:
        mem = spawn(scenario, memory_events, "")
        growth = (mem["rss_end_mb"] - mem["rss_10k_mb"]) / mem["rss_10k_mb"] * 100
        # The worst case for per-user state shows the cooldown table filling to its bound
        # (10,000 users) and is reported, not gated.
        passed = growth < 10
        ok &= passed or not gated
        verdict = ("PASS" if passed else "FAIL") if gated else "reported"
        print(
            f"| {label} | {mem['rss_10k_mb']:.1f} MiB | {mem['rss_mb'].get('100000', 0):.1f} MiB "
            f"| {mem['rss_end_mb']:.1f} MiB | {growth:+.1f}% | {'< 10%' if gated else '-'} | {verdict} |"
        )
        steps = ", ".join(f"{int(n):,}: {mb} MiB" for n, mb in mem["rss_mb"].items())
        tasks = ", ".join(f"{int(n):,}: {count:,}" for n, count in mem["tasks"].items())
        details.append(
            f"{label}: RSS {steps}, {memory_events:,}: {mem['rss_end_mb']:.1f} MiB; asyncio tasks {tasks}, "
            f"{memory_events:,}: {mem['tasks_end']:,}; cooldown entries kept: {mem['cooldown_entries']:,}; "
            f"!ask refused by a cooldown: {mem['refused']:,}; "
            f"history rows dropped: {mem['history_dropped']:,}"
        )
    print()
    return ok


if __name__ == "__main__":
    main()
