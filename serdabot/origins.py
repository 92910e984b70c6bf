"""The websocket Origin check: only this site's own pages may open its websockets.

A browser sends the session cookie with every websocket a page opens, whichever site the page
came from; the Origin header says which. channels' AllowedHostsOriginValidator compared only
the host with ALLOWED_HOSTS, so a page served on the same host by another port (another
service on the machine) or over another scheme was let in with the streamer's session.

This check follows Django's CSRF Origin check, so what the admin's login form accepts and what
a websocket accepts agree. An Origin (scheme, host and port) is accepted when it is:
- the connection's own origin: the scheme it came in by and the Host it was sent to, that Host
  being one ALLOWED_HOSTS accepts (Django's validate_host: `.example.com` covers subdomains);
- or one of CSRF_TRUSTED_ORIGINS (`https://*.example.com` covers subdomains, on that port).

Behind a TLS proxy the connection's scheme comes from X-Forwarded-Proto, as for Django's
pages (SECURE_PROXY_SSL_HEADER, or uvicorn's --proxy-headers); the proxy must pass the Host.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str  # lowercased, IPv6 without brackets
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_origin(text: str) -> Origin | None:
    """`scheme://host[:port]` as browsers send it; None for anything else ("null", a path...)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username is not None:
        return None
    return Origin(parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme])


def _headers(scope: Scope) -> dict[bytes, str]:
    # ASGI header names are lowercase bytes; a repeated header keeps its first value.
    found: dict[bytes, str] = {}
    for name, value in scope.get("headers", []):
        found.setdefault(bytes(name).lower(), bytes(value).decode("latin1"))
    return found


def _is_secure(scope: Scope, headers: dict[bytes, str]) -> bool:
    """Django's HttpRequest.is_secure() for this scope."""
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        meta_name, secure_value = proxy_header
        name = meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode()
        if name in headers:
            return headers[name].split(",")[0].strip() == secure_value
    return scope.get("scheme") in ("https", "wss")


def _raw_host(scope: Scope, headers: dict[bytes, str], secure: bool) -> str | None:
    """Django's HttpRequest._get_raw_host() for this scope."""
    if settings.USE_X_FORWARDED_HOST and b"x-forwarded-host" in headers:
        return headers[b"x-forwarded-host"]
    if b"host" in headers:
        return headers[b"host"]
    server = scope.get("server")
    if not server:
        return None
    name, port = server[0], server[1]
    return name if port in (None, 443 if secure else 80) else f"{name}:{port}"


def _allowed_hosts() -> list[str]:
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        return [".localhost", "127.0.0.1", "[::1]"]  # as Django's get_host() allows
    return list(settings.ALLOWED_HOSTS)


def own_origin(scope: Scope) -> Origin | None:
    """The origin this connection was made to, if its Host is one ALLOWED_HOSTS accepts."""
    headers = _headers(scope)
    secure = _is_secure(scope, headers)
    host = _raw_host(scope, headers, secure)
    if not host:
        return None
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return None
    return parse_origin(f"{'https' if secure else 'http'}://{host}")


def _trusted(origin: Origin) -> bool:
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        if "*" not in entry:
            if parse_origin(entry) == origin:
                return True
            continue
        # `https://*.example.com[:port]`: that domain and its subdomains, on that scheme and port.
        scheme, _, netloc = entry.partition("://")
        domain, port = split_domain_port(netloc.partition("*")[2])
        if scheme not in DEFAULT_PORTS or not domain.startswith("."):
            continue
        if (scheme, int(port) if port else DEFAULT_PORTS[scheme]) != (origin.scheme, origin.port):
            continue
        if is_same_domain(origin.host, domain):
            return True
    return False


def origin_allowed(scope: Scope) -> bool:
    header = _headers(scope).get(b"origin")
    # No Origin: refused, in DEBUG too. Browsers always send one on a websocket, and the check
    # exists for browsers; a script may send the Origin it means (the tests do).
    if header is None:
        return False
    origin = parse_origin(header)
    if origin is None:
        return False
    return origin == own_origin(scope) or _trusted(origin)


class OriginValidator:
    """ASGI middleware: a websocket whose Origin is not this site's is closed before it opens."""

    def __init__(self, application: ASGIApp) -> None:
        self.application = application

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            origin = _headers(scope).get(b"origin", "(none)")
            log.info("Websocket refused: Origin %r is neither this site's nor trusted", origin[:200])
            await WebsocketDenier()(scope, receive, send)
            return
        await self.application(scope, receive, send)
