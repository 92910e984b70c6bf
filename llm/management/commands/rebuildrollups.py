"""`python manage.py rebuildrollups`: recompute roll-ups, incidents and absences from raw history."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from llm.history import periods, rollups


class Command(BaseCommand):
    help = (
        "Recompute the hourly and daily roll-ups from the raw probes and calls, and the incidents, "
        "absences and tier statuses from the state changes. For history recorded before they "
        "existed, or after TIME_ZONE changed. Older roll-ups than the raw rows kept are left as they are. "
        "Best run with the bot stopped: rows it writes during the rebuild may be counted twice or not at all."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        counts = rollups.rebuild()
        self.stdout.write(
            f"Roll-ups: {counts['rollups']} rows from {counts['probes']} probes and {counts['calls']} calls."
        )
        found = periods.rebuild()
        self.stdout.write(
            f"Periods: {found['incidents']} incidents and {found['absences']} absences "
            f"from {found['events']} state changes."
        )
        self.stdout.write(f"Done in {time.perf_counter() - started:.1f} s.")
