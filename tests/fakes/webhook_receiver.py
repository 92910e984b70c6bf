"""A webhook receiver on 127.0.0.1: Discord's webhook endpoint or a generic JSON receiver.

A real HTTP server in its own thread. It records every POST (path, headers, JSON body)
and answers from a script of responses, one per request, then 204 No Content (what
Discord answers a webhook without `?wait=true`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Answer:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


class WebhookReceiver:
    # What a Discord webhook URL looks like: an id, then the token.
    TOKEN = "s3cr3t-webhook-token-0123456789abcdef"

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[Answer] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, dict(self.headers.items()), json.loads(raw) if raw else None)
                    )
                    answer = receiver.script.pop(0) if receiver.script else Answer()
                payload = b"" if answer.body is None else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        # A short poll: stop() waits for it.
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def discord_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/webhooks/1234567890/{self.TOKEN}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/serdabot?token={self.TOKEN}"

    def answer(self, *answers: Answer) -> None:
        with self._lock:
            self.script.extend(answers)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
