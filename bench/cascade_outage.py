"""Benchmark: chat during a local LLM outage, this cascade against the spec's naive one.

The local tier (the same fake OpenAI-compatible server as the tests, on 127.0.0.1) is
found at boot, then (a) refuses connections or (b) accepts and hangs. 200 consecutive
`!ask` go through the real handler (`chatbridge.handler.Handler`), first with
`LLMService`, then with a naive cascade that tries every tier on every message (the
spec's `call_model()`). Then the server comes back and we time how long until a
message is answered by the local tier again.

    .venv/bin/python bench/cascade_outage.py [--messages 200] [--timeout 0.5] [--probe-interval 2]

Targets (issue 3): at most 3 messages pay a timeout before the breaker opens; p99 <= 50 ms
over every message after those; under a hang >= 100x faster than naive at p99;
recovery within the probe interval + 1 s. The naive cascade's cost per message is the
timeout itself, so a short LLM_TIMEOUT keeps its run short; the ratio only grows with
the real default (10 s).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchenv  # bench/ is on sys.path when a benchmark runs as a script

ROOT = Path(__file__).resolve().parent.parent
P99_TARGET_MS = 50.0
MAX_PAID = 3
HANG_RATIO_TARGET = 100.0


def setup_django(local_dir: str) -> None:
    benchenv.setup_django(local_dir)
    from fallbacks import services

    services.warm()


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)


class NaiveCascade:
    """The spec's design: local, then OpenAI if a key is set, on every single message."""

    def __init__(self, endpoint: str, model: str, *, timeout: float, connect_timeout: float) -> None:
        import httpx

        self.endpoint = endpoint
        self.model = model
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=connect_timeout))

    async def complete(self, *, system_prompt: str, prompt: str, **_: Any) -> Any:
        from llm.results import CascadeResult

        started = time.monotonic()
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 200}
        try:
            response = await self.client.post(f"{self.endpoint}/chat/completions", json=body)
            response.raise_for_status()
            text = response.json()["choices"][0]["message"]["content"]
            return CascadeResult(text, "local", _ms(started), attempted=True)
        except Exception as exc:
            error = type(exc).__name__
        # No OpenAI key in this run: level 3, None.
        return CascadeResult(None, "fallback", _ms(started), {"local": error}, attempted=True)

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass
class Recorder:
    """Sits between the handler and a cascade to see each CascadeResult."""

    inner: Any
    results: list[Any] = field(default_factory=list)

    async def complete(self, **kwargs: Any) -> Any:
        result = await self.inner.complete(**kwargs)
        self.results.append(result)
        return result


@dataclass
class Run:
    scenario: str
    cascade: str
    times_ms: list[float]
    paid: int  # messages that waited on the failing tier (a request went out)
    recovery_s: float
    sources: dict[str, int]

    def p(self, q: float, after: int = 0) -> float:
        values = sorted(self.times_ms[after:])
        if not values:
            return math.nan
        return values[max(math.ceil(q * len(values)) - 1, 0)]


async def run_one(scenario: str, cascade: str, args: argparse.Namespace) -> Run:
    from chatbridge.events import ChatEvent
    from chatbridge.handler import Handler
    from llm.config import LLMConfig
    from llm.service import LLMService
    from tests.fakes.openai_server import FakeOpenAI

    with FakeOpenAI() as server:
        config = LLMConfig(
            endpoint=server.url,
            model="fake-model",
            timeout=args.timeout,
            connect_timeout=args.timeout,
            probe_interval=args.probe_interval,
        )
        service: LLMService | None = None
        naive: NaiveCascade | None = None
        if cascade == "this":
            service = LLMService(config)
            await service.start(process="bench")
            spy = Recorder(service)
        else:
            naive = NaiveCascade(server.url, "fake-model", timeout=args.timeout, connect_timeout=args.timeout)
            spy = Recorder(naive)
        handler = Handler(spy, bot_names=("serdabot",), fallback_mode="fun")

        async def say(i: int) -> tuple[float, str]:
            event = ChatEvent(platform="console", channel="bench", user="u", text=f"!ask question {i}")
            started = time.perf_counter()
            reply = await handler.handle(event)
            took = (time.perf_counter() - started) * 1000
            assert reply is not None and reply.intent == "ask"
            return took, reply.source

        server.set_fault("refuse" if scenario == "refused" else "hang")
        times: list[float] = []
        sources: dict[str, int] = {}
        for i in range(args.messages):
            took, source = await say(i)
            times.append(took)
            sources[source] = sources.get(source, 0) + 1
        paid = sum(1 for r in spy.results if r.attempted)

        # The server is back: how long until chat is answered by it again?
        server.clear()
        back = time.monotonic()
        recovery = math.nan
        while time.monotonic() - back < args.probe_interval + 10:
            _, source = await say(-1)
            if source == "local":
                recovery = time.monotonic() - back
                break
            await asyncio.sleep(0.02)

        if service is not None:
            await service.stop()
        if naive is not None:
            await naive.aclose()
    return Run(scenario, cascade, times, paid, recovery, sources)


def report(runs: list[Run], args: argparse.Namespace) -> bool:
    print(
        f"{args.messages} consecutive !ask through chatbridge.handler.Handler, "
        "local tier down, no OpenAI key.\n"
        f"LLM_TIMEOUT={args.timeout:g} s, LLM_CONNECT_TIMEOUT={args.timeout:g} s, "
        f"LLM_PROBE_INTERVAL={args.probe_interval:g} s, LLM_BREAKER_FAILURES=3.\n"
    )
    print(
        "| outage | cascade | paid the fault | p50 ms | p99 ms | p99 after breaker opened ms | recovery s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    by = {(r.scenario, r.cascade): r for r in runs}
    for r in runs:
        after = f"{r.p(0.99, r.paid):.2f}" if r.cascade == "this" else "-"
        print(
            f"| {r.scenario} | {r.cascade} | {r.paid}/{len(r.times_ms)} | {r.p(0.5):.2f} | {r.p(0.99):.2f} "
            f"| {after} | {r.recovery_s:.2f} |"
        )
    print()
    ok = True
    for scenario in ("refused", "hang"):
        mine, naive = by[(scenario, "this")], by[(scenario, "naive")]
        steady = mine.p(0.99, mine.paid)
        ratio = naive.p(0.99) / steady if steady > 0 else math.inf
        checks = [
            (f"at most {MAX_PAID} messages paid the fault", mine.paid <= MAX_PAID),
            (f"p99 after those <= {P99_TARGET_MS:g} ms ({steady:.2f} ms)", steady <= P99_TARGET_MS),
            (
                f"recovery within probe interval + 1 s ({mine.recovery_s:.2f} s)",
                mine.recovery_s <= args.probe_interval + 1,
            ),
        ]
        if scenario == "hang":
            checks.append((f">= {HANG_RATIO_TARGET:g}x faster than naive at p99", ratio >= HANG_RATIO_TARGET))
        print(f"{scenario}: naive p99 / this p99 after the breaker opened = {ratio:,.0f}x")
        for label, passed in checks:
            ok = ok and passed
            print(f"  [{'PASS' if passed else 'FAIL'}] {label}")
    return ok


async def main(args: argparse.Namespace) -> bool:
    runs = [
        await run_one(scenario, cascade, args)
        for scenario in ("refused", "hang")
        for cascade in ("this", "naive")
    ]
    return report(runs, args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument(
        "--timeout", type=float, default=0.5, help="LLM_TIMEOUT and LLM_CONNECT_TIMEOUT, seconds"
    )
    parser.add_argument("--probe-interval", type=float, default=2.0, help="LLM_PROBE_INTERVAL, seconds")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="serdabot-bench-") as local:
        setup_django(local)
        import logging

        # One log line per fallback reply is noise here.
        logging.getLogger("llm").setLevel(logging.ERROR)
        logging.getLogger("chatbridge").setLevel(logging.ERROR)
        passed = asyncio.run(main(arguments))
    sys.exit(0 if passed else 1)
