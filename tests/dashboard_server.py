"""The web server as `runbot` runs it, plus a history recorder driven from stdin.

    python tests/dashboard_server.py PORT      (environment from tests.subprocesses.bot_env)

Each stdin line is a JSON row to record ({"kind": "probe"|"tier_event"|"boot", ...}); the
server records it through the real HistoryRecorder in its own event loop (so the
in-memory channel layer reaches its websockets), then prints "recorded".
{"kind": "test_alert", "url": ...} sends a real test alert to that JSON webhook, through
the alert target the admin's button would use.
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

from asgiref.sync import sync_to_async  # noqa: E402

from chatbridge.webserver import WebServer  # noqa: E402
from llm.alerts.dispatch import send_test  # noqa: E402
from llm.alerts.models import AlertTarget  # noqa: E402
from llm.cascade.results import ProbeResult  # noqa: E402
from llm.history.recorder import HistoryRecorder  # noqa: E402


def send_test_alert(url: str) -> None:
    target = AlertTarget.objects.create(name="Streamer's webhook", kind=AlertTarget.Kind.WEBHOOK, url=url)
    failure = send_test(target)
    assert failure is None, failure


async def main(port: int) -> None:
    server = WebServer("127.0.0.1", port)
    serving = asyncio.create_task(server.serve())
    recorder = HistoryRecorder()
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        row = json.loads(line)
        kind = row.pop("kind")
        if kind == "probe":
            recorder.record_probe(ProbeResult(url="http://127.0.0.1:1/v1", **row))
        elif kind == "boot":
            recorder.record_boot(**row)
        elif kind == "test_alert":
            await sync_to_async(send_test_alert)(row["url"])
        else:
            recorder.record_tier_event(**row)
        await recorder.flush()
        print("recorded", flush=True)
    server.stop()
    await serving


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
