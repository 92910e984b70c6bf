"""A fake OpenAI-compatible server (LM Studio, llama.cpp, api.openai.com) on 127.0.0.1.

A real HTTP server in its own threads, so it keeps answering (or hanging) whatever the
client's event loop does, and serves sync tests, async tests, subprocesses and the
benchmark alike. It serves GET /v1/models and POST /v1/chat/completions, counts what
it receives, and injects one fault at a time:

refuse           nothing listens on the port (listening socket and open connections closed)
hang             accepts and reads the request, never answers
slow             answers after `delay` seconds
http500/http503  server error
rate_limit       429 with Retry-After: `retry_after`
model_not_found  404 model_not_found on completions; /models lists another model
malformed_json   200 with a body that is not JSON (both endpoints)
truncated        200 whose body stops short of its Content-Length (both endpoints)
empty_choices    completions answer {"choices": []}
empty_content    completions answer blank text
over_long        completions answer a few thousand characters
multi_line       completions answer several lines and a list
length           completions stop mid-sentence with finish_reason=length
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_ANSWER = "Python est un langage de programmation, lisible et très utilisé."
FAULTS = (
    "refuse",
    "hang",
    "slow",
    "http500",
    "http503",
    "rate_limit",
    "model_not_found",
    "malformed_json",
    "truncated",
    "empty_choices",
    "empty_content",
    "over_long",
    "multi_line",
    "length",
)
# Faults after which the tier still answers something usable once the text is cleaned.
CONTENT_FAULTS = ("over_long", "multi_line", "length")
FAILING_FAULTS = tuple(f for f in FAULTS if f not in CONTENT_FAULTS)

OVER_LONG = " ".join(f"mot{i}" for i in range(800))  # about 5,500 characters
MULTI_LINE = "Première ligne.\nDeuxième ligne.\n\n- un point\n- un autre point"
CUT_SHORT = "Python est un langage. Il sert pour le web, la science des donn"


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    body: Any
    authorization: str = ""

    @property
    def is_probe(self) -> bool:
        """A 1-token completion: the bot's health probe, not a chat message."""
        if self.path.endswith("/models"):
            return True
        if not isinstance(self.body, dict):
            return False
        return 1 in (self.body.get("max_tokens"), self.body.get("max_completion_tokens"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeOpenAI) -> None:
        self.fake = fake
        self.open_sockets: set[socket.socket] = set()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.open_sockets.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is part of the game, not a test failure

    def shutdown_request(self, request: Any) -> None:
        self.open_sockets.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real servers
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self._serve(body)

    def _serve(self, body: Any) -> None:
        fake = self.server.fake
        path = self.path.split("?")[0]
        fault, release = fake.fault, fake._release
        fake._received(Received(self.command, path, body, self.headers.get("Authorization", "")))
        if path not in ("/v1/models", "/v1/chat/completions"):
            self._json(404, {"error": {"message": f"no route {path}"}})
            return
        if fault == "hang":
            release.wait(60)
            self.close_connection = True
            return
        if fault == "slow":
            release.wait(fake.delay)
        if fault in ("http500", "http503"):
            self._json(
                int(fault[4:]), {"error": {"message": "internal server error", "type": "server_error"}}
            )
        elif fault == "rate_limit":
            self._json(
                429,
                {
                    "error": {
                        "message": "Rate limit reached",
                        "type": "requests",
                        "code": "rate_limit_exceeded",
                    }
                },
                headers={"Retry-After": fake.retry_after} if fake.retry_after else {},
            )
        elif fault == "malformed_json":
            self._raw(200, b'{"id": "chatcmpl-1", "choices": [{"message": ')
        elif fault == "truncated":
            self._raw(200, json.dumps(self._completion(fake.answer, "stop", body)).encode(), truncate=True)
        elif path == "/v1/models":
            models = ["another-model"] if fault == "model_not_found" else fake.models
            self._json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in models]})
        elif fault == "model_not_found":
            model = body.get("model") if isinstance(body, dict) else ""
            self._json(
                404,
                {
                    "error": {
                        "message": f"The model `{model}` does not exist or you do not have access to it.",
                        "type": "invalid_request_error",
                        "code": "model_not_found",
                    }
                },
            )
        elif fault == "empty_choices":
            self._json(200, {**self._completion("", "stop", body), "choices": []})
        else:
            text, finish = {
                "empty_content": ("   \n ", "stop"),
                "over_long": (OVER_LONG, "stop"),
                "multi_line": (MULTI_LINE, "stop"),
                "length": (CUT_SHORT, "length"),
            }.get(fault or "", (fake.answer, "stop"))
            self._json(200, self._completion(text, finish, body))

    @staticmethod
    def _completion(text: str, finish: str, body: Any) -> dict[str, Any]:
        model = body.get("model", "fake-model") if isinstance(body, dict) else "fake-model"
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._raw(status, json.dumps(data).encode(), headers=headers)

    def _raw(
        self, status: int, payload: bytes, *, headers: dict[str, str] | None = None, truncate: bool = False
    ):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if truncate:
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(payload)


class FakeOpenAI:
    """`with FakeOpenAI() as server:` ... `server.url` is the base URL (ends in /v1)."""

    def __init__(self, *, models: tuple[str, ...] = ("fake-model",), answer: str = DEFAULT_ANSWER) -> None:
        self.models = list(models)
        self.answer = answer
        self.fault: str | None = None
        self.delay = 2.0
        self.retry_after: str | None = "1"
        self.port = 0
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._listen()

    def stop(self) -> None:
        self._release.set()
        self._close()

    def set_fault(
        self, fault: str | None, *, delay: float | None = None, retry_after: str | bool | None = False
    ) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        if delay is not None:
            self.delay = delay
        if retry_after is not False:
            self.retry_after = retry_after  # type: ignore[assignment]
        # Requests hanging under the previous fault are let go (they close without answering).
        self._release.set()
        self._release = threading.Event()
        was_refusing = self.fault == "refuse"
        self.fault = fault
        if fault == "refuse" and not was_refusing:
            self._close()
        elif was_refusing and fault != "refuse":
            self._listen()

    def clear(self) -> None:
        self.set_fault(None)

    # -- what it received ---------------------------------------------------------------

    def _received(self, request: Received) -> None:
        with self._lock:
            self.requests.append(request)

    @property
    def chat_requests(self) -> int:
        """Chat completions that were not health probes."""
        with self._lock:
            return sum(1 for r in self.requests if r.path.endswith("/chat/completions") and not r.is_probe)

    @property
    def probe_requests(self) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.is_probe)

    @property
    def total_requests(self) -> int:
        with self._lock:
            return len(self.requests)

    # -- the listening socket -----------------------------------------------------------

    def _listen(self) -> None:
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        # A crashed server takes its open connections with it: pooled keep-alive ones too.
        for sock in list(server.open_sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
