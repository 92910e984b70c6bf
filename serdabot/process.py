"""Which process this is: host, pid and role, stamped on every history row.

Roles, set once at start by the entry point:
- "web": the ASGI application served alone (uvicorn/daphne on serdabot.asgi), or
  `runbot --no-adapters --no-worker`;
- "bot": `runbot` running adapters and a worker in one process (the default layout);
- "adapters": `runbot --no-worker` (the platform adapters, answers come from workers);
- "worker": `runbot --no-adapters` (answers events from the channel layer);
- "console": `manage.py chat`;
- "other": anything that never said (a shell, a script, `llmstatus`, the tests).
"""

from __future__ import annotations

import os
import socket
from typing import NamedTuple

ROLES = ("web", "bot", "adapters", "worker", "console", "other")
DEFAULT_ROLE = "other"
# The history models' column widths.
HOST_LENGTH = 100
ROLE_LENGTH = 16


class ProcessIdentity(NamedTuple):
    host: str
    pid: int
    role: str


_role: str | None = None
_cached: ProcessIdentity | None = None


def set_role(role: str) -> None:
    global _role, _cached
    if role not in ROLES:
        raise ValueError(f"unknown process role {role!r} (expected one of {', '.join(ROLES)})")
    _role, _cached = role, None


def set_default_role(role: str) -> None:
    """Set the role unless the entry point already did (runbot serves serdabot.asgi too)."""
    if _role is None:
        set_role(role)


def role() -> str:
    return _role or DEFAULT_ROLE


def identity() -> ProcessIdentity:
    """This process, computed once (again after a fork: a child has a pid of its own)."""
    global _cached
    cached = _cached
    pid = os.getpid()
    if cached is None or cached.pid != pid:
        cached = _cached = ProcessIdentity(socket.gethostname()[:HOST_LENGTH], pid, role())
    return cached


def reset() -> None:
    """Forget the role (tests)."""
    global _role, _cached
    _role, _cached = None, None
