"""The web server as `runbot` runs it, plus a history recorder driven from stdin.

    python tests/dashboard_server.py PORT      (environment from tests.subprocesses.bot_env)

Each stdin line is a JSON row to record ({"kind": "probe"|"tier_event", ...}); the
server records it through the real HistoryRecorder in its own event loop (so the
in-memory channel layer reaches its websockets), then prints "recorded".
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "serdabot.settings")
django.setup()

from chatbridge.webserver import WebServer  # noqa: E402
from llm.cascade.results import ProbeResult  # noqa: E402
from llm.history.recorder import HistoryRecorder  # noqa: E402


async def main(port: int) -> None:
    server = WebServer("127.0.0.1", port)
    serving = asyncio.create_task(server.serve())
    recorder = HistoryRecorder()
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        row = json.loads(line)
        if row.pop("kind") == "probe":
            recorder.record_probe(ProbeResult(url="http://127.0.0.1:1/v1", **row))
        else:
            recorder.record_tier_event(**row)
        await recorder.flush()
        print("recorded", flush=True)
    server.stop()
    await serving


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
