"""Benchmark: a chaos soak of the multi-process layout, a week of faults in minutes.

The documented layout, every part a real process: web (uvicorn), adapters (`runbot
--no-web --no-worker`) against the fake Twitch with the bot a moderator in `--channels`
channels, two workers (`runbot --no-web --no-adapters`), PostgreSQL (a fresh database,
reached through a TCP proxy), a private Redis and the fake OpenAI-compatible model. A
steady `--rate` of `!ask` a second goes to the channels. Every other line is from a
moderator never seen before (cooldowns bypassed); the others are from regular viewers, each
asking again in its channel only once its cooldown per user (20 s) is surely over. So every
line is owed a reply, and a cooldown reservation that outlives its reply shows as a line
without one.
A dashboard websocket stays open on the web process meanwhile.

Faults, drawn from `--seed`, each kind spread over the run (different kinds may overlap):
  redis-kill   redis-server SIGKILLed, restarted empty (no persistence) after a few seconds
  worker-kill  worker-2 SIGKILLed, started again after a delay, as systemd's RestartSec would
               (worker-1 is never killed: its memory tells a leak)
  llm-hang     completions accepted and never answered (/models still answers)
  llm-refuse   nothing listens on the model's port
  llm-drip     completions answered one byte a second
  pg-cut       every PostgreSQL connection closed, new ones refused, then restored
A process that exits on its own is a failure; it is started again so the soak goes on.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 5] [--channels 10] [--seed 1]
        [--deadline 15] [--quick] [--logs DIR]

The end: the load stops, the soak waits LLM_DEADLINE + 5 s for stragglers, then counts.
Reply time runs from the push to the fake Twitch until it receives the bot's send.
Targets: 0 lines without a reply, 0 answered twice, max reply time <= LLM_DEADLINE + 2 s,
each process's resident memory within +10% between minute 2 (or half the run, if shorter)
and the end, and no process exiting on its own. Exit status 1 when a target fails.
Needs PostgreSQL (TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test) and
the redis-server binary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchenv  # bench/ is on sys.path when a benchmark runs as a script

sys.path.insert(0, str(benchenv.ROOT))

import psutil
from cascade_outage import percentile

from llm.cascade.config import LLMConfig
from tests.fakes.fake_twitch import FakeTwitch, bot_message, chat_message
from tests.fakes.openai_server import DEFAULT_ANSWER, FakeOpenAI
from tests.faults import PrivateRedis, TcpProxy, proxied_postgres_database
from tests.layout import WORKER, Layout, count, dashboard_socket, running_layout

MEMORY_GROWTH = 0.10
CHECKPOINT = 120.0  # seconds: the memory baseline ("minute 2")
WARMUP = 15.0  # seconds of steady load before the first fault
TAIL = 15.0  # seconds of steady load after the last fault has ended
KILLED_WORKER = "worker-2"
LLM_FAULTS = {"llm-hang": "completions_hang", "llm-refuse": "refuse", "llm-drip": "drip"}
# How long each fault lasts (seconds): Redis down, the restart delay, the model or database away.
LENGTHS = {
    "redis-kill": (2.0, 8.0),
    "worker-kill": (2.0, 6.0),
    "llm": (5.0, 20.0),
    "pg-cut": (5.0, 20.0),
}
KINDS = ("redis-kill", "worker-kill", *LLM_FAULTS, "pg-cut")
# Every other line comes from a regular viewer (not a moderator) who asks again in the same
# channel once their cooldown is surely over: a reservation that outlived its reply (a fault
# between the workers and the platform) would refuse that line, which then has no reply.
USER_COOLDOWN = 20  # seconds, every channel's cooldown per user (no channel cooldown)
REGULAR_MARGIN = 10.0  # seconds past the cooldown and the longest reply before a regular asks again
CHANNEL_SETTINGS = {"user_cooldown": USER_COOLDOWN, "channel_cooldown": 0, "cooldown_notice": False}
VIEWERS = (
    "every other line from a new moderator (cooldowns bypassed), the others from regular viewers "
    f"asking again in their channel once their {USER_COOLDOWN} s cooldown is over"
)


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the load started
    kind: str
    length: float


def schedule(rng: random.Random, duration: float) -> list[Fault]:
    """Each family of faults spread evenly over the run, at seeded places within its slots.

    One of each every 3 minutes or so (at least one each); the three LLM faults take turns
    on the one model, so they never overlap one another.
    """
    start, end = WARMUP, duration - TAIL
    per_family = max(1, round(duration / 180))
    faults: list[Fault] = []
    families: list[tuple[str, list[str]]] = [
        ("redis-kill", ["redis-kill"] * per_family),
        ("worker-kill", ["worker-kill"] * per_family),
        ("llm", [kind for _ in range(per_family) for kind in rng.sample(list(LLM_FAULTS), len(LLM_FAULTS))]),
        ("pg-cut", ["pg-cut"] * per_family),
    ]
    for family, kinds in families:
        slot = (end - start) / len(kinds)
        low, high = LENGTHS[family]
        for i, kind in enumerate(kinds):
            length = min(rng.uniform(low, high), slot * 0.8)
            at = start + i * slot + rng.uniform(0, slot - length)
            faults.append(Fault(round(at, 1), kind, round(length, 1)))
    return sorted(faults, key=lambda f: f.at)


@dataclass
class Soak:
    args: argparse.Namespace
    layout: Layout
    redis: PrivateRedis
    proxy: TcpProxy
    channels: list[tuple[str, str]]
    started: float = 0.0
    pushed: dict[str, float] = field(default_factory=dict)  # message id -> push time
    not_delivered: int = 0  # the fake had no chat connection to push to
    injected: dict[str, int] = field(default_factory=dict)
    down: dict[str, float] = field(default_factory=dict)  # seconds each kind was in force
    timeline: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    rss: dict[str, dict[str, int]] = field(default_factory=dict)  # checkpoint -> process -> bytes
    restarts: dict[str, int] = field(default_factory=dict)
    dashboard_rows: int = 0
    dashboard_last: float = 0.0
    dashboard_connects: int = 0
    history_rows: int = 0

    def now(self) -> float:
        return time.monotonic() - self.started

    def note(self, text: str) -> None:
        line = f"{self.now():7.1f} s  {text}"
        self.timeline.append(line)
        print(line, file=sys.stderr, flush=True)

    # -- the load ------------------------------------------------------------------------

    async def load(self, duration: float) -> None:
        rng = random.Random(self.args.seed + 1)
        interval = 1.0 / self.args.rate
        # Enough regulars, taken in turn, that each asks again only after its cooldown (which
        # starts when its reply is sent, at most LLM_DEADLINE + 2 s after its line) and a margin.
        gap = USER_COOLDOWN + self.args.deadline + 2 + REGULAR_MARGIN
        regulars = [
            (self.channels[i % len(self.channels)], (str(20_000_000 + i), f"regular{i}"))
            for i in range(math.ceil(self.args.rate / 2 * gap) + 1)
        ]
        next_at = time.monotonic()
        n = 0
        while self.now() < duration:
            message_id = f"soak-{n}"
            if n % 2:
                channel, chatter = regulars[(n // 2) % len(regulars)]
                badges: list[str] = []
            else:
                channel = (
                    self.channels[n % len(self.channels)]
                    if n < len(self.channels)
                    else rng.choice(self.channels)
                )
                chatter, badges = (str(10_000_000 + n), f"viewer{n}"), ["moderator"]
            line = chat_message(
                "!ask c'est quoi Python ?",
                chatter=chatter,
                broadcaster=channel,
                message_id=message_id,
                badges=badges,
            )
            try:
                pushed_at = time.monotonic()
                await self.layout.twitch.push(line)
                self.pushed[message_id] = pushed_at
            except (AssertionError, ConnectionError, RuntimeError):
                self.not_delivered += 1
            n += 1
            next_at += interval
            await asyncio.sleep(max(next_at - time.monotonic(), 0))

    # -- the faults ----------------------------------------------------------------------

    async def inject(self, fault: Fault) -> None:
        await asyncio.sleep(max(fault.at - self.now(), 0))
        self.note(f"{fault.kind} for {fault.length:.1f} s")
        self.injected[fault.kind] = self.injected.get(fault.kind, 0) + 1
        began = time.monotonic()
        if fault.kind == "redis-kill":
            self.redis.kill()
            await asyncio.sleep(fault.length)
            await asyncio.to_thread(self.redis.start)
        elif fault.kind == "worker-kill":
            processes = self.layout.processes
            await processes.kill(KILLED_WORKER)
            await asyncio.sleep(fault.length)
            if processes[KILLED_WORKER].returncode is not None:  # not already started by the watch
                await processes.start(*WORKER, name=KILLED_WORKER)
            self.restarts[KILLED_WORKER] = self.restarts.get(KILLED_WORKER, 0) + 1
        elif fault.kind == "pg-cut":
            await asyncio.to_thread(self.proxy.cut)
            await asyncio.sleep(fault.length)
            await asyncio.to_thread(self.proxy.restore)
        else:
            await asyncio.to_thread(self.layout.model.set_fault, LLM_FAULTS[fault.kind])
            await asyncio.sleep(fault.length)
            await asyncio.to_thread(self.layout.model.clear)
        self.down[fault.kind] = self.down.get(fault.kind, 0.0) + time.monotonic() - began
        self.note(f"{fault.kind} over")

    async def watch_processes(self) -> None:
        """A process that ended on its own is a failure; start it again, as systemd would."""
        processes = self.layout.processes
        while True:
            await asyncio.sleep(1.0)
            for name, code in processes.unexpected_exits():
                self.unexpected.append(f"{name} exited with {code} at {self.now():.0f} s")
                self.note(f"{name} exited on its own with {code}; starting it again")
                proc = processes[name]
                await asyncio.sleep(2.0)
                await processes.start(*proc.args, name=name)
                self.restarts[name] = self.restarts.get(name, 0) + 1

    async def dashboard(self) -> None:
        """One open dashboard page; it should keep receiving rows whatever Redis does."""
        port = self.layout.port
        while True:
            try:
                async with dashboard_socket(port) as socket:
                    self.dashboard_connects += 1
                    async for frame in socket:
                        if json.loads(frame).get("kind") != "status":
                            self.dashboard_rows += 1
                            self.dashboard_last = self.now()
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(1.0)

    def sample_memory(self, label: str) -> None:
        self.rss[label] = {}
        for proc in self.layout.processes.procs:
            if proc.returncode is None:
                with contextlib.suppress(psutil.Error):
                    self.rss[label][proc.name] = psutil.Process(proc.pid).memory_info().rss

    async def memory_at(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds - self.now(), 0))
        self.sample_memory("checkpoint")
        self.note("memory baseline taken")


async def run(args: argparse.Namespace) -> bool:
    duration = args.minutes * 60.0
    deadline = args.deadline
    rng = random.Random(args.seed)
    faults = schedule(rng, duration)
    checkpoint = min(CHECKPOINT, duration / 2)
    logs = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="soak-"))
    logs.mkdir(parents=True, exist_ok=True)
    twitch = FakeTwitch()
    channels = [twitch.add_channel(f"soakchan{i:03d}") for i in range(args.channels)]
    env = {
        "LLM_DEADLINE": f"{deadline:g}",
        "LLM_PROBE_INTERVAL": "5",
        "LOG_LEVEL": "WARNING",  # a line per answer is noise over thousands of answers
    }
    print(
        f"Chaos soak: {args.minutes:g} min, {args.rate:g} !ask/s over {args.channels} channels, "
        f"seed {args.seed}, LLM_DEADLINE={deadline:g} s, LLM_PROBE_INTERVAL=5 s.\n"
        f"Viewers: {VIEWERS}. Logs: {logs}\n",
        flush=True,
    )
    print("Faults planned:", ", ".join(f"{f.kind}@{f.at:g}s/{f.length:g}s" for f in faults), "\n", flush=True)
    with (
        PrivateRedis(logs / "redis") as redis,
        proxied_postgres_database() as database,
        FakeOpenAI() as model,
    ):
        model.chunk_delay = 0.05  # an answer streams over about 0.4 s, so some are always in flight
        async with running_layout(
            logs,
            model=model,
            database_url=database.url,
            check_url=database.direct_url,
            redis_url=redis.url,
            twitch=twitch,
            channels=[login for _, login in channels],
            env=env,
            channel_settings=CHANNEL_SETTINGS,
        ) as layout:
            twitch.stamp = time.monotonic
            for channel in channels:
                await twitch.push(bot_message(channel))  # the bot learns it is a moderator there
            await asyncio.sleep(1.0)
            soak = Soak(args, layout, redis, database.proxy, channels)
            soak.started = time.monotonic()
            helpers = [
                asyncio.create_task(soak.watch_processes()),
                asyncio.create_task(soak.dashboard()),
                asyncio.create_task(soak.memory_at(checkpoint)),
            ]
            injections = [asyncio.create_task(soak.inject(f)) for f in faults]
            await soak.load(duration)
            soak.note(f"load stopped; waiting {deadline + 5:g} s for stragglers")
            await asyncio.gather(*injections)
            await asyncio.sleep(deadline + 5)
            soak.sample_memory("end")
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            codes = await layout.stop()
            names = [p.name for p in layout.processes.procs]
            soak.note(f"stopped: exit codes {dict(zip(names, codes, strict=True))}")
            # Flushed on the way out: what the history kept of the run, database cuts included.
            soak.history_rows = count(database.direct_url, "SELECT count(*) FROM llm_cascadecall")
            passed = report(soak, duration, checkpoint)
    if passed and not args.logs:
        shutil.rmtree(logs, ignore_errors=True)
    return passed


def _mib(value: int | None) -> str:
    return f"{value / 2**20:.1f} MiB" if value else "-"


def report(soak: Soak, duration: float, checkpoint: float) -> bool:
    twitch, deadline = soak.layout.twitch, soak.args.deadline
    replies: dict[str, list[dict[str, Any]]] = {}
    for sent in twitch.sent:
        replies.setdefault(str(sent.get("reply_parent_message_id")), []).append(sent)
    unanswered = [i for i in soak.pushed if i not in replies]
    doubles = {i: len(r) for i, r in replies.items() if i in soak.pushed and len(r) > 1}
    strangers = [i for i in replies if i not in soak.pushed]
    times = [r[0]["t"] - soak.pushed[i] for i, r in replies.items() if i in soak.pushed and "t" in r[0]]
    by_model = sum(1 for i, r in replies.items() if i in soak.pushed and DEFAULT_ANSWER in r[0]["message"])
    answered = len(soak.pushed) - len(unanswered)

    print("\n| figure | value |\n|---|---:|")
    rows = [
        ("lines sent (!ask)", f"{len(soak.pushed):,}"),
        ("lines not delivered (no chat connection)", f"{soak.not_delivered:,}"),
        ("replies received", f"{len(twitch.sent):,}"),
        ("  answered by the model / by a fallback phrase", f"{by_model:,} / {answered - by_model:,}"),
        ("lines with no reply", f"{len(unanswered):,}"),
        ("lines with two replies or more", f"{len(doubles):,}"),
        ("replies to lines never sent", f"{len(strangers):,}"),
        ("call history rows written", f"{soak.history_rows:,}"),
        ("reply time p50", f"{percentile(times, 0.50):.2f} s"),
        ("reply time p99", f"{percentile(times, 0.99):.2f} s"),
        ("reply time max", f"{max(times, default=float('nan')):.2f} s"),
        (
            "dashboard rows pushed (reconnects)",
            f"{soak.dashboard_rows:,} ({max(soak.dashboard_connects - 1, 0)}), "
            f"last at {soak.dashboard_last:.0f} s",
        ),
    ]
    for label, value in rows:
        print(f"| {label} | {value} |")

    print("\n| fault | injected | seconds in force |\n|---|---:|---:|")
    for kind in KINDS:
        print(f"| {kind} | {soak.injected.get(kind, 0)} | {soak.down.get(kind, 0.0):.0f} |")

    print(f"\n| process | RSS at {checkpoint:g} s | RSS at the end | growth | restarts |")
    print("|---|---:|---:|---:|---:|")
    memory_ok = True
    for proc in soak.layout.processes.procs:
        before = soak.rss.get("checkpoint", {}).get(proc.name)
        after = soak.rss.get("end", {}).get(proc.name)
        restarted = soak.restarts.get(proc.name, 0)
        if before and after and not restarted:
            growth = after / before - 1
            memory_ok = memory_ok and growth <= MEMORY_GROWTH
            shown = f"{growth:+.1%}"
        else:
            shown = "restarted: not compared" if restarted else "-"
        print(f"| {proc.name} | {_mib(before)} | {_mib(after)} | {shown} | {restarted} |")

    if unanswered:
        print(
            "\nNo reply (first 20):",
            ", ".join(f"{i}@{soak.pushed[i] - soak.started:.1f}s" for i in unanswered[:20]),
        )
    if doubles:
        print("Two replies (first 20):", ", ".join(f"{i}x{n}" for i, n in list(doubles.items())[:20]))
    late = [
        f"{i}@{soak.pushed[i] - soak.started:.1f}s:{r[0]['t'] - soak.pushed[i]:.1f}s"
        for i, r in replies.items()
        if i in soak.pushed and r[0]["t"] - soak.pushed[i] > deadline + 2
    ]
    if late:
        print("Over LLM_DEADLINE + 2 s (first 20):", ", ".join(late[:20]))
    print("\nTimeline:\n" + "\n".join(soak.timeline))

    targets = [
        ("0 lines without a reply", not unanswered),
        ("0 lines answered twice", not doubles),
        (
            f"max reply time <= LLM_DEADLINE + 2 s ({deadline + 2:g} s)",
            bool(times) and max(times) <= deadline + 2,
        ),
        (f"every process's memory within +{MEMORY_GROWTH:.0%} from {checkpoint:g} s to the end", memory_ok),
        ("no process exited on its own", not soak.unexpected),
    ]
    print("\n| target | result |\n|---|---|")
    for label, passed in targets:
        print(f"| {label} | {'PASS' if passed else 'FAIL'} |")
    for line in soak.unexpected:
        print(f"  {line}")
    ok = all(passed for _, passed in targets)
    print(f"\n{'All targets met.' if ok else 'A target FAILED.'}")
    return ok


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the load runs")
    parser.add_argument("--rate", type=float, default=5.0, help="!ask per second, over every channel")
    parser.add_argument("--channels", type=int, default=10, help="channels the bot moderates")
    parser.add_argument("--seed", type=int, default=1, help="draws the faults (and the channels' order)")
    parser.add_argument(
        "--deadline", type=float, default=LLMConfig().deadline, help="LLM_DEADLINE, seconds (the default's)"
    )
    parser.add_argument("--quick", action="store_true", help="a 2-minute smoke run")
    parser.add_argument("--logs", default="", help="keep every process's log here (default: kept on failure)")
    args = parser.parse_args()
    if args.quick:
        args.minutes = 2.0
    return args


if __name__ == "__main__":
    sys.exit(0 if asyncio.run(run(parse_args())) else 1)
