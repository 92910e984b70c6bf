"""`python manage.py chat`: talk to the bot from the terminal (the console adapter).

At a terminal the log stays out of the conversation: start-up warnings show before the
banner, then only errors (`--verbose`: the whole log, as runbot's). It goes to stderr either
way, and piped or with `-m` the log is as runbot's. Ctrl-C quits with exit code 0, at the
prompt or while a reply is awaited.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatbridge.adapters.console import ConsoleAdapter
from chatbridge.bot import (
    PendingMigrations,
    cancel,
    check_migrations,
    start_runtime,
    start_worker,
    stop_runtime,
)
from chatbridge.events import Reply, reply_json
from chatbridge.terminal import TerminalLines
from serdabot.database import close_connection
from serdabot.outage import connection_errors
from serdabot.process import set_role


class Command(BaseCommand):
    help = "Chat with the bot in the terminal, through the same detection, layer and handler as runbot."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-m", "--message", help="Send this one message, print the reply and exit.")
        parser.add_argument("--user", default="viewer", help="Chat user name (default: viewer).")
        parser.add_argument("--json", action="store_true", help="Print one JSON object per message.")
        parser.add_argument(
            "--moderator",
            action="store_true",
            help="Talk as a moderator: `!serdabot off|on|llm off|llm on|status|block|unblock|forget` work.",
        )
        parser.add_argument(
            "--verbose",
            action="store_true",
            help="Show the log (on stderr) during an interactive session too; by default only errors.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        set_role("console")
        interactive = options["message"] is None and sys.stdin.isatty()
        quiet = interactive and not options["verbose"]
        if quiet:
            log_at_least(logging.WARNING)  # start-up warnings (no LLM found) still show
        try:
            try:
                check_migrations()
            except PendingMigrations as exc:
                raise CommandError(str(exc)) from None
            except connection_errors():
                # Unreachable: the bot still answers, from the built-in phrases; the runtime
                # says so in one line as it starts.
                close_connection()
            asyncio.run(self.session(options, interactive=interactive, quiet=quiet))
        except KeyboardInterrupt:
            # Ctrl-C is how one leaves: the session has stopped cleanly, no traceback.
            if interactive:
                self.stdout.write("")
            return

    async def session(self, options: dict[str, Any], *, interactive: bool, quiet: bool) -> None:
        bot = await start_runtime("chat")
        worker = start_worker()
        console = ConsoleAdapter(user=options["user"], moderator=options["moderator"])
        try:
            if options["message"] is not None:
                await self.exchange(console, options["message"], options["json"])
                return
            lines = TerminalLines()
            if interactive:
                if quiet:
                    log_at_least(logging.ERROR)  # nothing more between the prompt and the replies
                self.stdout.write(banner(options["user"], verbose=not quiet))
            while True:
                if interactive:
                    self.stdout.write("> ", ending="")
                    self.stdout.flush()
                line = await lines.get()
                if line is None:
                    if interactive:
                        self.stdout.write("")  # Ctrl-D: the shell's prompt on a line of its own
                    break
                if line.strip():
                    await self.exchange(console, line, options["json"])
        finally:
            await cancel([worker])
            await stop_runtime(bot)

    async def exchange(self, console: ConsoleAdapter, text: str, as_json: bool) -> None:
        reply = await console.say(text)
        self.stdout.write(self.render(reply, as_json))
        self.stdout.flush()

    @staticmethod
    def render(reply: Reply | None, as_json: bool) -> str:
        if as_json:
            return json.dumps(reply_json(reply), ensure_ascii=False)
        if reply is None:
            return "(no reply: not a command or a mention)"
        said = reply.source if reply.fallback_intent is None else f"fallback {reply.fallback_intent}"
        facts = [said, reply.intent, f"{reply.latency_ms:.0f} ms"]
        if reply.first_token_ms is not None:
            facts.append(f"first token {reply.first_token_ms:.0f} ms")
        summary = f"{reply.text}\n  [{', '.join(facts)}]"
        if reply.tiers:
            summary += "\n  tiers: " + "; ".join(describe_tier(tier) for tier in reply.tiers)
        return summary


def banner(user: str, *, verbose: bool) -> str:
    end = "Ctrl-Z then Enter" if os.name == "nt" else "Ctrl-D"
    log = "" if verbose else "; --verbose shows the log"
    return f"Chatting with the bot as {user}: type a message and press Enter. Ctrl-C or {end} quits{log}."


def log_at_least(level: int) -> None:
    """Only records of `level` and above reach the console log handler (settings.LOGGING's, on stderr)."""
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)


def describe_tier(tier: Mapping[str, Any]) -> str:
    """E.g. "local timeout ReadTimeout 2000 ms", "openai skipped CircuitOpen"."""
    parts = [str(tier.get("tier", "?")), str(tier.get("outcome", "?"))]
    if tier.get("error"):
        parts.append(str(tier["error"]))
    if isinstance(tier.get("ms"), int | float):
        parts.append(f"{tier['ms']:.0f} ms")
    return " ".join(parts)
