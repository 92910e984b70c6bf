"""The web server runbot runs: where it can listen, and a refusal said in one line."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import pytest

from chatbridge.webserver import PortUnavailable, WebServer, check_port, listen_sockets, unavailable_message


@pytest.fixture
def taken() -> Iterator[socket.socket]:
    """A port something already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def test_a_free_port_is_bound_as_asyncio_binds_it(taken: socket.socket) -> None:
    port = taken.getsockname()[1]
    taken.close()

    sockets = listen_sockets("127.0.0.1", port)
    try:
        assert [s.getsockname() for s in sockets] == [("127.0.0.1", port)]
        assert sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
    finally:
        for sock in sockets:
            sock.close()
    check_port("127.0.0.1", port)  # closed again: free for the server


def test_a_busy_port_names_a_free_one(taken: socket.socket) -> None:
    port = taken.getsockname()[1]

    with pytest.raises(PortUnavailable) as refused:
        check_port("127.0.0.1", port)

    message = str(refused.value)
    assert message.startswith(f"Port {port} is already in use (another SerdaBot?). Start with --port ")
    suggested = int(message.rsplit("--port ", 1)[1].rstrip("."))
    assert suggested > port
    check_port("127.0.0.1", suggested)


def test_an_unknown_host_says_to_check_it() -> None:
    with pytest.raises(PortUnavailable, match=r"Check --host\.$"):
        check_port("no-such-host.invalid", 8000)


async def test_the_server_losing_the_race_raises_instead_of_exiting(taken: socket.socket) -> None:
    # The port was free when runbot checked it and taken before the server started:
    # uvicorn itself would log the error and call sys.exit() from inside the event loop.
    server = WebServer("127.0.0.1", taken.getsockname()[1])

    with pytest.raises(PortUnavailable, match="already in use"):
        await server.serve()


def test_a_forbidden_port_names_an_open_one_above_1023() -> None:
    # What binding port 80 without root, or a port Windows reserves, raises.
    message = unavailable_message("127.0.0.1", 80, PermissionError(errno.EACCES, "Permission denied"))

    assert message.startswith("Port 80 is not open to this user on this machine. Start with --port ")
    assert int(message.rsplit("--port ", 1)[1].rstrip(".")) >= 1024


def test_an_address_this_machine_cannot_use_is_skipped(
    taken: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--host localhost` with ::1 in /etc/hosts: IPv6 disabled in the kernel (no such family)
    # or no such address (EADDRNOTAVAIL). asyncio's create_server skips both; so must we.
    port = taken.getsockname()[1]
    taken.close()
    no_such_family = 9999

    def localhost(host: object, port: int, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 0, "", ("127.0.0.1", port)),
            (no_such_family, socket.SOCK_STREAM, 0, "", ("nowhere", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 0, "", ("2001:db8::1", port, 0, 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", localhost)

    sockets = listen_sockets("localhost", port)
    try:
        assert [s.getsockname() for s in sockets] == [("127.0.0.1", port)]
    finally:
        for sock in sockets:
            sock.close()


def test_no_usable_address_at_all_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def only_unusable(host: object, port: int, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        return [(socket.AF_INET6, socket.SOCK_STREAM, 0, "", ("2001:db8::1", port, 0, 0))]

    monkeypatch.setattr(socket, "getaddrinfo", only_unusable)

    with pytest.raises(PortUnavailable, match=r"Check --host and --port\.$"):
        listen_sockets("localhost", 8000)
