"""`python manage.py waitfordb`: return once the database answers.

For the web unit's `ExecStartPre`, before `migrate`: a database still starting (the host
rebooting, a failover) is waited for with one line, as `runbot` waits for it, instead of
`migrate` failing with a traceback until systemd's start limit leaves the unit failed.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand

from serdabot.database import Stopped, ping, wait_for_database

log = logging.getLogger("serdabot.database")


class Command(BaseCommand):
    help = "Wait until the database answers (one line while it does not), then exit 0."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            wait_for_database(ping, who="waitfordb")
        except (KeyboardInterrupt, Stopped):
            # Stopped while waiting: no traceback, and not a success either.
            raise SystemExit(1) from None
