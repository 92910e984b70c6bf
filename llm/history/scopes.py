"""Whose history a row is: the bot's own processes, or console runs (`manage.py chat`)."""

from __future__ import annotations

from llm.models import Scope

CONSOLE_ROLES = frozenset({"console"})


def scope_of(role: str) -> str:
    # Rows from before roles were recorded have none: they were the bot's.
    return Scope.CONSOLE.value if role in CONSOLE_ROLES else Scope.BOT.value


def scopes(include_console: bool) -> tuple[str, ...]:
    return (Scope.BOT.value, Scope.CONSOLE.value) if include_console else (Scope.BOT.value,)
