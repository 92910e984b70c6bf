"""`python manage.py prunehistory`: delete availability history older than the retention."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from llm.history.retention import prune_history, retention_days


class Command(BaseCommand):
    help = (
        "Delete probes, calls, state changes and boot detections older than "
        "HISTORY_RETENTION_DAYS (default 90)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, help="Keep this many days instead of HISTORY_RETENTION_DAYS.")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"] if options["days"] is not None else retention_days()
        if days < 1:
            raise CommandError("--days must be at least 1")
        deleted = prune_history(days)
        summary = ", ".join(f"{n} {name}" for name, n in deleted.items())
        self.stdout.write(f"Kept the last {days} days; deleted {summary}.")
