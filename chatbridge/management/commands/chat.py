"""`python manage.py chat`: talk to the bot from the terminal (the console adapter)."""

from __future__ import annotations

import asyncio
import json
import sys
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
from chatbridge.events import Reply


class Command(BaseCommand):
    help = "Chat with the bot in the terminal, through the same detection, layer and handler as runbot."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-m", "--message", help="Send this one message, print the reply and exit.")
        parser.add_argument("--user", default="viewer", help="Chat user name (default: viewer).")
        parser.add_argument("--json", action="store_true", help="Print one JSON object per message.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            check_migrations()
        except PendingMigrations as exc:
            raise CommandError(str(exc)) from None
        asyncio.run(self.session(options))

    async def session(self, options: dict[str, Any]) -> None:
        bot = await start_runtime("chat")
        worker = start_worker()
        console = ConsoleAdapter(user=options["user"])
        try:
            if options["message"] is not None:
                await self.exchange(console, options["message"], options["json"])
                return
            interactive = sys.stdin.isatty()
            while True:
                if interactive:
                    self.stdout.write("> ", ending="")
                    self.stdout.flush()
                line = await asyncio.to_thread(sys.stdin.readline)
                if not line:
                    break
                if line.strip():
                    await self.exchange(console, line.rstrip("\n"), options["json"])
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
            if reply is None:
                return json.dumps({"reply": None, "source": None, "intent": None, "latency_ms": None})
            data = {
                "reply": reply.text,
                "source": reply.source,
                "intent": reply.intent,
                "latency_ms": reply.latency_ms,
            }
            return json.dumps(data, ensure_ascii=False)
        if reply is None:
            return "(no reply: not a command or a mention)"
        return f"{reply.text}\n  [{reply.source}, {reply.intent}, {reply.latency_ms:.0f} ms]"
