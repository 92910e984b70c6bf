"""What `runbot` says at start so a new install knows where to go next: the web pages'
real addresses, and the command that creates the account logging in to them."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.urls import NoReverseMatch, reverse

log = logging.getLogger("serdabot.bot")

# Addresses a server listens on that a browser cannot open: every interface.
EVERY_INTERFACE = {"", "0.0.0.0", "::"}
# (what the page is, its URL name, its path should the name not resolve)
PAGES = (
    ("Dashboard", "dashboard", "/"),
    ("Admin", "admin:index", "/admin/"),
    ("Web chat", "webchat", "/chat/"),
    ("Connect Twitch", "twitch-connect", "/twitch/connect/"),
    ("Connect Discord", "discord-connect", "/discord/connect/"),
)


def path_of(name: str, fallback: str) -> str:
    """The path of URL `name`, or `fallback` in an install whose URLconf lacks it."""
    try:
        return reverse(name)
    except NoReverseMatch:
        return fallback


# This machine, however the server listens: shown as localhost, the one name Twitch accepts in an
# http OAuth redirect URL (and one name for one session cookie).
LOOPBACK = frozenset({"", "0.0.0.0", "::", "127.0.0.1", "::1", "localhost"})


def browsable_host(host: str) -> str:
    """An address a browser on this machine reaches a server listening on `host` at."""
    if host in LOOPBACK:
        return "localhost"
    return f"[{host}]" if ":" in host else host


def base_url(host: str, port: int) -> str:
    return f"http://{browsable_host(host)}:{port}"


def address_lines(host: str, port: int) -> list[str]:
    base = base_url(host, port)
    width = max(len(label) for label, _, _ in PAGES) + 1
    lines = [f"{label + ':':<{width}} {base}{path_of(name, path)}" for label, name, path in PAGES]
    if host in EVERY_INTERFACE:
        lines.append(
            f"Listening on every interface: from another machine, use this machine's address "
            f"with port {port} (and add it to ALLOWED_HOSTS)."
        )
    return lines


def shown_path(path: PurePath, cwd: PurePath) -> str:
    """`path` as typed from `cwd`: relative when inside it (`.venv/bin/python`), else whole."""
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def createsuperuser_command(
    executable: str, cwd: str, manage_py: str, *, windows: bool = os.name == "nt"
) -> str:
    """The command that creates a staff account, for this machine's shell (POSIX or PowerShell)."""
    pure: type[PurePath] = PureWindowsPath if windows else PurePosixPath
    python = shown_path(pure(executable), pure(cwd))
    manage = shown_path(pure(manage_py), pure(cwd))
    if windows:
        python = python.removesuffix(".exe")
        if " " in python:
            # PowerShell runs a quoted path only through its call operator.
            python = f'& "{python}"'
        manage = f'"{manage}"' if " " in manage else manage
        return f"{python} {manage} createsuperuser"
    if "/" not in python:
        python = f"./{python}"  # a bare name would be looked up on PATH, not here
    return f"{shlex.quote(python)} {shlex.quote(manage)} createsuperuser"


def needs_account() -> bool:
    return not get_user_model()._default_manager.filter(is_staff=True).exists()


def account_line() -> str:
    command = createsuperuser_command(sys.executable, os.getcwd(), str(Path(settings.BASE_DIR) / "manage.py"))
    return f"No account can log in to these pages yet: create one with  {command}"


async def announce(host: str, port: int) -> None:
    """Log the pages' addresses, and how to create an account when there is none."""
    for line in address_lines(host, port):
        log.info("%s", line)
    try:
        missing = await sync_to_async(needs_account)()
    except DatabaseError:
        return  # the database is away: the start already said so, and the pages will too
    if missing:
        log.warning("%s", account_line())
