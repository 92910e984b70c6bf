"""Faults a week of production brings, on demand: a Redis that dies, a database cut off.

Reusable from sync tests, async tests (with processes started by them) and bench/soak.py:

- `PrivateRedis`: a `redis-server` of its own on a free port, killed (SIGKILL) and
  restarted on the same port, never the shared Redis other tests use.
- `TcpProxy`: a TCP proxy in its own thread in front of a server (PostgreSQL by default),
  cut (every open connection closed, new ones refused) and restored on the same port.
- `proxied_postgres_database()`: a fresh PostgreSQL database, and its URL through a proxy.
"""

from __future__ import annotations

import contextlib
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

from tests.services import POSTGRES_URL, fresh_postgres_database, unavailable
from tests.subprocesses import free_port

REDIS_SERVER = "redis-server"


class PrivateRedis:
    """`with PrivateRedis() as redis:` ... `redis.url`; `kill()`, `restart()`, `stop()`.

    Nothing is persisted (`--save '' --appendonly no`): a killed Redis comes back empty,
    as one restarted without persistence does in production (groups, queued messages and
    claims gone). `start=False` keeps it down at first: its URL is refused until `start()`.
    """

    def __init__(self, directory: Path | None = None, *, start: bool = True) -> None:
        self.port = free_port()
        self._own_dir = directory is None
        self.dir = Path(tempfile.mkdtemp(prefix="redis-")) if directory is None else directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._start_on_enter = start
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> PrivateRedis:
        if self._start_on_enter:
            self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        if shutil.which(REDIS_SERVER) is None:
            unavailable(f"{REDIS_SERVER} is not installed")
        command = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--logfile",
            str(self.log_path),
        ]
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self._wait_ready(timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown, open connections reset, everything in memory lost."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.kills += 1

    def restart(self) -> None:
        """Back on the same port, empty (after a kill, or a clean restart)."""
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {log[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise TimeoutError(f"redis-server did not answer on port {self.port} within {timeout} s")


class TcpProxy:
    """A TCP proxy on 127.0.0.1:`port` in front of `target`, pumping bytes in its own thread.

    `cut()` closes the listening socket and every open connection: clients see their
    connections reset and new ones refused, as when the server's host goes down.
    `restore()` listens again on the same port. Usable from any thread or event loop.
    """

    def __init__(self, target: tuple[str, int], *, port: int = 0) -> None:
        self.target = target
        self.port = port or free_port()
        self.cuts = 0
        self.connections = 0  # accepted since the start
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._requests: list[tuple[str, threading.Event]] = []
        self._listener: socket.socket | None = None
        self._peers: dict[socket.socket, socket.socket] = {}
        self._pending: dict[socket.socket, bytearray] = {}  # bytes a slow side has not taken yet
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"tcp-proxy-{self.port}", daemon=True)

    @property
    def is_cut(self) -> bool:
        return self._listener is None

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> TcpProxy:
        self._listen()
        self._thread.start()
        return self

    def cut(self) -> None:
        """Close every open connection and refuse new ones, until restore()."""
        self._ask("cut")

    def restore(self) -> None:
        self._ask("restore")

    def stop(self) -> None:
        if self._thread.is_alive():
            self._ask("stop")
            self._thread.join(5)

    def _ask(self, what: str) -> None:
        """Have the proxy's thread do `what`, and wait until it has."""
        done = threading.Event()
        with self._lock:
            self._requests.append((what, done))
        self._wake_w.send(b"x")
        if not done.wait(5):
            raise TimeoutError(f"the proxy's thread did not {what} within 5 s")

    # -- the proxy's thread -------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.setblocking(False)
        self._listener = listener
        self._selector.register(listener, selectors.EVENT_READ, "accept")

    def _run(self) -> None:
        while not self._stopped:
            for key, mask in self._selector.select(timeout=1.0):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._wake_r:
                    self._handle_requests()
                elif key.data == "accept":
                    self._accept()
                else:
                    if mask & selectors.EVENT_WRITE:
                        self._flush(sock)
                    if mask & selectors.EVENT_READ:
                        self._pump(sock)
        self._close_all()
        if self._listener is not None:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _handle_requests(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._wake_r.recv(1024)
        with self._lock:
            requests, self._requests = self._requests, []
        for what, done in requests:
            if what in ("cut", "stop") and self._listener is not None:
                self._selector.unregister(self._listener)
                self._listener.close()
                self._listener = None
                self._close_all()
                self.cuts += what == "cut"
            elif what == "restore" and self._listener is None:
                self._listen()
            self._stopped = self._stopped or what == "stop"
            done.set()

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        try:
            upstream = socket.create_connection(self.target, timeout=3)
        except OSError:
            client.close()  # the server itself is down: so is the proxy, for this client
            return
        self.connections += 1
        for sock in (client, upstream):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._selector.register(sock, selectors.EVENT_READ, "pump")
            self._pending[sock] = bytearray()
        self._peers[client], self._peers[upstream] = upstream, client

    def _pump(self, sock: socket.socket) -> None:
        peer = self._peers.get(sock)
        if peer is None:
            return
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_pair(sock)
            return
        self._pending[peer] += data
        self._flush(peer)

    def _flush(self, sock: socket.socket) -> None:
        pending = self._pending.get(sock)
        if pending is None:
            return
        try:
            sent = sock.send(pending) if pending else 0
        except BlockingIOError:
            sent = 0
        except OSError:
            self._close_pair(sock)
            return
        del pending[:sent]
        self._watch(sock)
        self._watch(self._peers[sock])

    def _watch(self, sock: socket.socket) -> None:
        """Read a side while its peer has room; write to it while it has bytes waiting."""
        events = 0 if self._pending[self._peers[sock]] else selectors.EVENT_READ
        events |= selectors.EVENT_WRITE if self._pending[sock] else 0
        try:
            key = self._selector.get_key(sock)
        except KeyError:
            if events:
                self._selector.register(sock, events, "pump")
            return
        if not events:
            self._selector.unregister(sock)
        elif key.events != events:
            self._selector.modify(sock, events, "pump")

    def _close_pair(self, sock: socket.socket) -> None:
        peer = self._peers.pop(sock, None)
        for one in (sock, peer):
            if one is None:
                continue
            self._peers.pop(one, None)
            self._pending.pop(one, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(one)
            with contextlib.suppress(OSError):
                # RST, not FIN: a host that went away does not say goodbye politely.
                one.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            one.close()

    def _close_all(self) -> None:
        for sock in list(self._peers):
            self._close_pair(sock)


def postgres_target() -> tuple[str, int]:
    """Where the test PostgreSQL listens (from TEST_POSTGRES_URL)."""
    parts = urlsplit(POSTGRES_URL)
    return parts.hostname or "127.0.0.1", parts.port or 5432


def through(database_url: str, proxy: TcpProxy) -> str:
    """`database_url` with its host and port replaced by the proxy's."""
    parts = urlsplit(database_url)
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@127.0.0.1:{proxy.port}" if auth else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class ProxiedDatabase:
    direct_url: str  # for the test's own checks: never cut
    url: str  # through the proxy: what the processes under test use
    proxy: TcpProxy


@contextlib.contextmanager
def proxied_postgres_database() -> Iterator[ProxiedDatabase]:
    """A fresh PostgreSQL database (dropped afterwards) and a proxy in front of it."""
    with fresh_postgres_database() as direct, TcpProxy(postgres_target()) as proxy:
        yield ProxiedDatabase(direct, through(direct, proxy), proxy)
