"""The admin, web chat and dashboard served from inside `runbot`'s event loop."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Generator

import uvicorn

# Windows reports these with its own codes (WSAE...).
IN_USE = {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE)}
# A port below 1024 without root, or one Windows reserves (Hyper-V takes ranges of them).
FORBIDDEN = {errno.EACCES, getattr(errno, "WSAEACCES", errno.EACCES)}
# How far above a busy port to look for a free one to suggest.
SUGGEST_WITHIN = 20


class PortUnavailable(Exception):
    """The web server cannot listen where it was asked to; the message is the one line to show."""


def listen_sockets(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to `host`:`port` with the options asyncio's create_server (which uvicorn
    uses) sets, so a port free here is free for it; PortUnavailable says why not."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise PortUnavailable(f"Cannot listen on {host!r}: {exc.strerror}. Check --host.") from None
    sockets: list[socket.socket] = []
    skipped: OSError | None = None
    for family, kind, proto, _, address in dict.fromkeys(infos):
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            # A family this kernel lacks (`localhost` also naming ::1 with IPv6 disabled):
            # asyncio's create_server skips the address too.
            skipped = exc
            continue
        sockets.append(sock)
        try:
            # asyncio sets SO_REUSEADDR on POSIX only: on Windows it would let two servers share a port.
            if os.name == "posix":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.setblocking(False)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                # The family exists but has no such address here (bpo-30945): skipped like asyncio does.
                sockets.remove(sock)
                sock.close()
                skipped = exc
                continue
            close(sockets)
            raise PortUnavailable(unavailable_message(host, port, exc)) from None
    if not sockets:
        reason = skipped or OSError(errno.EADDRNOTAVAIL, "no address to listen on")
        raise PortUnavailable(unavailable_message(host, port, reason))
    return sockets


def close(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def check_port(host: str, port: int) -> None:
    """Raise PortUnavailable now, before anything else starts, if the web server could not listen."""
    close(listen_sockets(host, port))


def free_port_above(host: str, port: int) -> int | None:
    for candidate in range(port + 1, min(port + SUGGEST_WITHIN, 65535) + 1):
        try:
            close(listen_sockets(host, candidate))
        except PortUnavailable:
            continue
        return candidate
    return None


def unavailable_message(host: str, port: int, exc: OSError) -> str:
    if exc.errno in IN_USE:
        return f"Port {port} is already in use (another SerdaBot?). {another_port(host, port)}"
    if exc.errno in FORBIDDEN:
        return f"Port {port} is not open to this user on this machine. {another_port(host, port)}"
    return f"Cannot listen on {host}:{port} ({exc.strerror or exc}). Check --host and --port."


def another_port(host: str, port: int) -> str:
    free = free_port_above(host, max(port, 1023))
    return f"Start with --port {free}." if free is not None else "Start with another --port."


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # runbot owns SIGINT/SIGTERM and stops every part itself, the web server included.
        yield


class WebServer:
    def __init__(self, host: str, port: int) -> None:
        config = uvicorn.Config(
            "serdabot.asgi:application",
            host=host,
            port=port,
            lifespan="off",
            log_level="warning",
            # Django's LOGGING (serdabot/settings.py) formats and redacts uvicorn's lines too.
            log_config=None,
            ws="websockets-sansio",
        )
        self.host = host
        self.port = port
        self.server = _Server(config)

    async def serve(self) -> None:
        # Bound here rather than by uvicorn, which logs a bind failure and calls sys.exit():
        # a busy port is one line (PortUnavailable), and runbot stops cleanly.
        sockets = listen_sockets(self.host, self.port)
        try:
            await self.server.serve(sockets=sockets)
        finally:
            close(sockets)

    def stop(self) -> None:
        self.server.should_exit = True
