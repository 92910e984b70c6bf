"""A fake OpenAI-compatible server (LM Studio, llama.cpp, api.openai.com) on 127.0.0.1.

A real HTTP server in its own threads, so it keeps answering (or hanging) whatever the
client's event loop does, and serves sync tests, async tests, subprocesses and the
benchmark alike. It serves GET /v1/models and POST /v1/chat/completions, counts what
it receives, and injects one fault at a time. POST /v1/moderations flags the texts that
hold one of the words of `flag` (word -> categories); the faults that concern every
endpoint apply to it too.

A completion whose body has `"stream": true` is answered with Server-Sent Events the way
OpenAI does (200, text/event-stream, no Content-Length, `Connection: close`): a role chunk,
the answer in at most eight content chunks `chunk_delay` seconds apart, a chunk with the
finish_reason, a usage chunk (`"choices": []`) when `stream_options.include_usage` is
set, then `data: [DONE]`. Each fault below has its streamed form.

refuse           nothing listens on the port (listening socket and open connections closed)
hang             accepts and reads the request, never answers (both endpoints)
completions_hang /models answers; completions accept and never answer
slow             answers after `delay` seconds
warmup           completions wait until `warmup_delay` seconds after the first one arrived
                 (LM Studio loading the model on first use); /models answers at once
http500/http503  server error
rate_limit       429 with Retry-After: `retry_after`
echo_key_401     401 invalid_api_key whose message repeats the whole key sent (both endpoints)
model_not_found  404 model_not_found on completions; /models lists another model
malformed_json   200 with a body that is not JSON (both endpoints); streamed: events not JSON
truncated        200 whose body stops short of its Content-Length (both endpoints);
                 streamed: the role chunk and one content chunk, then the connection closes
drip             completions send status and headers at once, then the body one byte
                 every `drip_interval` seconds: a read timeout never trips
stall            completions send the start of the answer (streamed: the role chunk and one
                 content chunk), then hang without closing
empty_choices    completions answer {"choices": []}; streamed: chunks with no choices
empty_content    completions answer blank text
over_long        completions answer a few thousand characters
multi_line       completions answer several lines and a list
length           completions stop mid-sentence with finish_reason=length
surrogate        completions answer a text whose JSON holds a lone surrogate escape \\ud800

Faults that hang (hang, completions_hang, stall, drip, and the waits of slow and warmup)
are released by set_fault, clear and stop. `in_flight` and `peak_in_flight` count the
completions being served (probes included), `peak_chat_in_flight` leaves out the probes.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_ANSWER = "Python est un langage de programmation, lisible et très utilisé."
FAULTS = (
    "refuse",
    "hang",
    "completions_hang",
    "slow",
    "warmup",
    "http500",
    "http503",
    "rate_limit",
    "echo_key_401",
    "model_not_found",
    "malformed_json",
    "truncated",
    "drip",
    "stall",
    "empty_choices",
    "empty_content",
    "over_long",
    "multi_line",
    "length",
    "surrogate",
)
# Faults after which the tier still answers something usable once the text is cleaned.
CONTENT_FAULTS = ("over_long", "multi_line", "length", "surrogate")
FAILING_FAULTS = tuple(f for f in FAULTS if f not in CONTENT_FAULTS)

OVER_LONG = " ".join(f"mot{i}" for i in range(800))  # about 5,500 characters
MULTI_LINE = "Première ligne.\nDeuxième ligne.\n\n- un point\n- un autre point"
CUT_SHORT = "Python est un langage. Il sert pour le web, la science des donn"
# A lone surrogate: json.dumps writes it as the six characters \ud800, json.loads gives it back.
SURROGATE = "Voilà \ud800 une réponse."
MAX_CONTENT_CHUNKS = 8
# How long a hanging request waits for its release (set_fault, clear, stop) at most.
HANG_FOR = 60.0


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

    @property
    def is_stream(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True


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
        request = Received(self.command, path, body, self.headers.get("Authorization", ""))
        fake._received(request)
        if path == "/v1/chat/completions":
            fake._begin(request.is_probe)
            try:
                self._answer(request, fault, release)
            finally:
                fake._end(request.is_probe)
        elif path == "/v1/models":
            self._answer(request, fault, release)
        elif path == "/v1/moderations":
            self._moderate(request, fault, release)
        else:
            self._json(404, {"error": {"message": f"no route {path}"}})

    def _answer(self, request: Received, fault: str | None, release: threading.Event) -> None:
        fake = self.server.fake
        path, body, stream = request.path, request.body, request.is_stream
        completions = path == "/v1/chat/completions"
        if fault == "hang" or (fault == "completions_hang" and completions):
            self._wait(release, HANG_FOR)
            self.close_connection = True
            return
        if fault == "slow":
            self._wait(release, fake.delay)
        if fault == "warmup" and completions:
            self._wait(release, fake._warmup_ends() - time.monotonic())
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
        elif fault == "echo_key_401":
            key = request.authorization.removeprefix("Bearer ").strip()
            self._json(
                401,
                {
                    "error": {
                        "message": f"Incorrect API key provided: {key}",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
            )
        elif fault == "malformed_json" and stream:
            self._start_stream()
            self._write(b'data: {"id": "chatcmpl-1", "choices": [{"delta": \n\n')
            self._write(b'data: {"id": "chatcmpl-1", "choices": [{"delta": {"content": "Py\n\n')
            self._write(b"data: [DONE]\n\n")
        elif fault == "malformed_json":
            self._raw(200, b'{"id": "chatcmpl-1", "choices": [{"message": ')
        elif fault == "truncated" and stream:
            self._start_stream()
            self._write_events(self._events(fake.answer, "stop", body)[:2])
            self._hang_up()
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
        elif fault == "empty_choices" and stream:
            self._start_stream()
            self._write_events(self._events(None, "stop", body))
        elif fault == "empty_choices":
            self._json(200, {**self._completion("", "stop", body), "choices": []})
        else:
            text, finish = {
                "empty_content": ("   \n ", "stop"),
                "over_long": (OVER_LONG, "stop"),
                "multi_line": (MULTI_LINE, "stop"),
                "length": (CUT_SHORT, "length"),
                "surrogate": (SURROGATE, "stop"),
            }.get(fault or "", (fake.answer, "stop"))
            if stream:
                self._stream(text, finish, body, fault, release)
            else:
                payload = json.dumps(self._completion(text, finish, body)).encode()
                if fault == "drip":
                    self._send_headers(200, len(payload))
                    self._drip(payload, release)
                elif fault == "stall":
                    self._send_headers(200, len(payload))
                    self._write(payload[: len(payload) // 3])
                    self._wait(release, HANG_FOR)
                    self._hang_up()
                else:
                    self._raw(200, payload)

    # -- moderation -------------------------------------------------------------------

    def _moderate(self, request: Received, fault: str | None, release: threading.Event) -> None:
        """POST /v1/moderations: each input flagged for the categories of the `flag` words it holds.

        The faults that concern every endpoint apply (refuse, hang, slow, HTTP errors,
        echo_key_401, malformed_json, truncated, drip); the completion-only ones do not.
        """
        fake = self.server.fake
        if fault in ("hang", "slow", "http500", "http503", "rate_limit", "echo_key_401", "malformed_json"):
            self._answer(request, fault, release)  # the same hang or error as the other endpoints
            return
        body = request.body if isinstance(request.body, dict) else {}
        raw = body.get("input", "")
        inputs = raw if isinstance(raw, list) else [raw]
        results = [_moderation(str(text), fake.flag) for text in inputs]
        model = body.get("model") or "omni-moderation-latest"
        payload = json.dumps({"id": "modr-fake", "model": model, "results": results}).encode()
        if fault == "truncated":
            self._raw(200, payload, truncate=True)
        elif fault == "drip":
            self._send_headers(200, len(payload))
            self._drip(payload, release)
        else:
            self._raw(200, payload)

    # -- streamed answers ---------------------------------------------------------------

    def _stream(self, text: str, finish: str, body: Any, fault: str | None, release: threading.Event) -> None:
        events = self._events(text, finish, body)
        self._start_stream()
        if fault == "drip":
            if self._drip(b"".join(events), release):
                self._sent(events)
        elif fault == "stall":
            self._write_events(events[:2])
            self._wait(release, HANG_FOR)
            self._hang_up()
        else:
            self._write_events(events)

    def _events(self, text: str | None, finish: str, body: Any) -> list[bytes]:
        """The whole stream as SSE events; `text=None` gives chunks with no choices."""
        model = body.get("model", "fake-model") if isinstance(body, dict) else "fake-model"
        created = int(time.time())

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            data = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        def delta(content: dict[str, str], finish_reason: str | None = None) -> bytes:
            return chunk([{"index": 0, "delta": content, "finish_reason": finish_reason}])

        if text is None:
            events = [chunk([]), chunk([])]
        else:
            events = [delta({"role": "assistant", "content": ""})]
            # A reasoning model streams its thinking first, apart from the answer (LM Studio's form).
            events += [delta({"reasoning_content": thought}) for thought in self.server.fake.reasoning]
            events += [delta({"content": piece}) for piece in _pieces(text)]
            events.append(delta({}, finish))
        options = body.get("stream_options") if isinstance(body, dict) else None
        if isinstance(options, dict) and options.get("include_usage") is True:
            prompt = _words(body.get("messages"))
            completion = len((text or "").split())
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
            events.append(chunk([], usage=usage))
        events.append(b"data: [DONE]\n\n")
        return events

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # the body ends when the connection does
        self.end_headers()

    def _write_events(self, events: list[bytes]) -> None:
        delay = self.server.fake.chunk_delay
        for i, event in enumerate(events):
            if i and delay > 0:
                time.sleep(delay)
            self._write(event)
            self._sent([event])

    def _sent(self, events: list[bytes]) -> None:
        """Note the usage chunk among events that went out."""
        for event in events:
            if event.startswith(b"data: {") and b'"usage"' in event:
                self.server.fake.last_usage = json.loads(event[6:])["usage"]

    def _drip(self, payload: bytes, release: threading.Event) -> bool:
        """One byte every `drip_interval` seconds until done (True), released or the client hangs up."""
        interval = self.server.fake.drip_interval
        self.close_connection = True
        for i in range(len(payload)):
            try:
                self._write(payload[i : i + 1])
            except OSError:
                return False
            if i + 1 < len(payload) and (release.wait(interval) or self._client_gone()):
                self._hang_up()
                return False
        return True

    def _wait(self, release: threading.Event, seconds: float) -> None:
        """Sleep `seconds`, less if released or if the client hangs up (it is no longer in flight)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if release.wait(min(left, 0.05)) or self._client_gone():
                return

    def _client_gone(self) -> bool:
        """The client closed its end (it sends nothing else while it waits for the answer)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True

    def _hang_up(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _write(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    # -- whole answers ------------------------------------------------------------------

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

    def _send_headers(self, status: int, length: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def _raw(
        self, status: int, payload: bytes, *, headers: dict[str, str] | None = None, truncate: bool = False
    ) -> None:
        self._send_headers(status, len(payload), headers)
        if truncate:
            self._write(payload[: len(payload) // 2])
            self._hang_up()
            return
        self.wfile.write(payload)


def _pieces(text: str) -> list[str]:
    """The text in at most MAX_CONTENT_CHUNKS pieces cut after whitespace; they join back to it."""
    words = re.findall(r"\s*\S+\s*|\s+", text)
    size = -(-len(words) // MAX_CONTENT_CHUNKS)  # ceiling division
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)] if words else []


def _words(messages: Any) -> int:
    """Word count of the messages' text: the fake's deterministic prompt_tokens."""
    count = 0
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        parts = content if isinstance(content, list) else [{"text": content}]
        for part in parts:
            text = part.get("text") if isinstance(part, dict) else None
            count += len(text.split()) if isinstance(text, str) else 0
    return count


MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def _moderation(text: str, flag: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """One result of OpenAI's moderation endpoint, flagging the categories of the words in `text`."""
    lowered = text.lower()
    flagged = {
        category for word, categories in flag.items() if word.lower() in lowered for category in categories
    }
    return {
        "flagged": bool(flagged),
        "categories": {c: c in flagged for c in MODERATION_CATEGORIES},
        "category_scores": {c: 0.97 if c in flagged else 0.001 for c in MODERATION_CATEGORIES},
        "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES},
    }


class FakeOpenAI:
    """`with FakeOpenAI() as server:` ... `server.url` is the base URL (ends in /v1)."""

    def __init__(self, *, models: tuple[str, ...] = ("fake-model",), answer: str = DEFAULT_ANSWER) -> None:
        self.models = list(models)
        self.answer = answer
        self.fault: str | None = None
        self.delay = 2.0
        self.retry_after: str | None = "1"
        self.chunk_delay = 0.0  # seconds between the events of a streamed answer
        self.reasoning: list[str] = []  # thinking streamed as `reasoning_content` before the answer
        self.drip_interval = 1.0  # seconds between the bytes of a `drip` answer
        self.warmup_delay = 8.0  # how long the `warmup` model takes to load
        # The usage chunk of the last stream that asked for one (include_usage).
        self.last_usage: dict[str, int] | None = None
        # POST /v1/moderations flags a text holding one of these words for its categories.
        self.flag: dict[str, tuple[str, ...]] = {}
        self.port = 0
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._warmup_started: float | None = None
        self._in_flight = 0
        self._chat_in_flight = 0
        self._peak_in_flight = 0
        self._peak_chat_in_flight = 0
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
        with self._lock:
            self._warmup_started = None  # each warmup fault loads the model afresh
        was_refusing = self.fault == "refuse"
        self.fault = fault
        if fault == "refuse" and not was_refusing:
            self._close()
        elif was_refusing and fault != "refuse":
            self._listen()

    def clear(self) -> None:
        self.set_fault(None)

    def _warmup_ends(self) -> float:
        """When the model being loaded is ready: `warmup_delay` after the first completion."""
        with self._lock:
            if self._warmup_started is None:
                self._warmup_started = time.monotonic()
            return self._warmup_started + self.warmup_delay

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
    def moderation_requests(self) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path.endswith("/moderations"))

    @property
    def probe_requests(self) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.is_probe)

    @property
    def total_requests(self) -> int:
        with self._lock:
            return len(self.requests)

    # -- completions being served -------------------------------------------------------

    def _begin(self, probe: bool) -> None:
        with self._lock:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
            if not probe:
                self._chat_in_flight += 1
                self._peak_chat_in_flight = max(self._peak_chat_in_flight, self._chat_in_flight)

    def _end(self, probe: bool) -> None:
        with self._lock:
            self._in_flight -= 1
            if not probe:
                self._chat_in_flight -= 1

    @property
    def in_flight(self) -> int:
        """Chat completions (probes included) being served now: received, not yet answered."""
        with self._lock:
            return self._in_flight

    @property
    def chat_in_flight(self) -> int:
        """Like in_flight, without the 1-token health probes."""
        with self._lock:
            return self._chat_in_flight

    @property
    def peak_in_flight(self) -> int:
        """The most completions (probes included) served at once since start or reset_peak()."""
        with self._lock:
            return self._peak_in_flight

    @property
    def peak_chat_in_flight(self) -> int:
        """The most chat completions (probes left out) served at once since start or reset_peak()."""
        with self._lock:
            return self._peak_chat_in_flight

    def reset_peak(self) -> None:
        """Start the peaks afresh from what is in flight now."""
        with self._lock:
            self._peak_in_flight = self._in_flight
            self._peak_chat_in_flight = self._chat_in_flight

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
