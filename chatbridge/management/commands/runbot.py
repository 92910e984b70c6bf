"""`python manage.py runbot`: the bot, its worker, its adapters and (by default) the web server."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatbridge.bot import ALL_PLATFORMS, PendingMigrations, check_migrations, run_bot
from chatbridge.config import check_env
from chatbridge.webserver import PortUnavailable, check_port
from llm.history.backfill import backfill_if_needed
from serdabot.database import Stopped, wait_for_database
from serdabot.process import set_role

log = logging.getLogger("serdabot.runbot")


def role_of(platforms: set[str], *, worker: bool) -> str:
    """The process's role in the history (serdabot/process.py)."""
    adapters = bool(platforms - {"web"})
    if adapters:
        return "bot" if worker else "adapters"
    return "worker" if worker else "web"


class Command(BaseCommand):
    help = "Run the chat bot: boot detection, the worker, every configured adapter and the web server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-web", action="store_true", help="Run the bot without the web server.")
        parser.add_argument("--host", default="127.0.0.1", help="Web server address (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8000, help="Web server port (default 8000).")
        parser.add_argument(
            "--no-adapters", action="store_true", help="Run no platform adapter (a worker-only process)."
        )
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="Run no chat worker: events go to workers in other processes (needs REDIS_URL).",
        )
        parser.add_argument(
            "--platform",
            action="append",
            choices=sorted(ALL_PLATFORMS),
            help="Only start these parts (repeatable): twitch, discord, web. Default: all configured.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("serdabot").setLevel(logging.INFO)
        platforms = set(options["platform"] or ALL_PLATFORMS)
        if options["no_web"]:
            platforms.discard("web")
        if options["no_adapters"]:
            platforms &= {"web"}
        if options["no_worker"] and not settings.REDIS_URL:
            raise CommandError("--no-worker needs a shared channel layer: set REDIS_URL")
        # A platform setting people get wrong (a login for an id, a URL for a channel): one line
        # naming it (manage.py prints the SettingError), before anything starts.
        check_env(platforms)
        if "web" in platforms:
            try:
                # Before the database wait and boot detection: a busy port is said at once.
                check_port(options["host"], options["port"])
            except PortUnavailable as exc:
                raise CommandError(str(exc)) from None
        set_role(role_of(platforms, worker=not options["no_worker"]))
        try:
            # A database down at start (rebooting with the host, restarting) is waited for,
            # saying so once: systemd restarting a process that died would say it every time.
            wait_for_database(check_migrations, who="runbot")
        except PendingMigrations as exc:
            raise CommandError(str(exc)) from None
        except (KeyboardInterrupt, Stopped):
            log.info("Stopped.")
            return
        backfill_if_needed()
        try:
            asyncio.run(
                run_bot(
                    platforms=platforms,
                    host=options["host"],
                    port=options["port"],
                    worker=not options["no_worker"],
                )
            )
        except PortUnavailable as exc:
            # Taken between the check above and the web server's start: the bot has stopped.
            raise CommandError(str(exc)) from None
