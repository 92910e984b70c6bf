"""Alert targets from the environment, created at `runbot` start when missing.

ALERT_DISCORD_WEBHOOK_URL, ALERT_WEBHOOK_URL and ALERT_EMAIL_TO name where alerts go on
a fresh install; after that the targets are the admin's. A target of that kind with that
URL or address already there (enabled or not, renamed or not) is left as it is.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import connection, transaction

from llm.alerts.models import AlertTarget
from llm.alerts.transports import addresses

log = logging.getLogger("llm.alerts")

# pg_advisory_xact_lock's key for seeding (any constant no other code uses).
SEED_LOCK = 0x5E1DA1E7

Kind = AlertTarget.Kind


@contextlib.contextmanager
def one_process_at_a_time() -> Iterator[None]:
    """Processes start together (adapters and workers): only one may look and create at a time.

    SQLite's IMMEDIATE transactions already take the write lock at BEGIN; PostgreSQL
    needs a lock of its own, as there is no row to lock before the first target exists.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEED_LOCK])
        yield


def valid_url(url: str, setting: str) -> bool:
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        # The value is not printed: it carries the webhook's token.
        log.warning("%s is not an http(s) URL: no alert target made from it", setting)
        return False
    return True


def seed_targets() -> list[AlertTarget]:
    """Create the targets the settings name and the database lacks; returns those created."""
    created: list[AlertTarget] = []
    with one_process_at_a_time():
        for kind, setting, name in (
            (Kind.DISCORD, "ALERT_DISCORD_WEBHOOK_URL", "Discord"),
            (Kind.WEBHOOK, "ALERT_WEBHOOK_URL", "Webhook"),
        ):
            url = str(getattr(settings, setting, "") or "")
            if (
                url
                and valid_url(url, setting)
                and not AlertTarget.objects.filter(kind=kind, url=url).exists()
            ):
                created.append(AlertTarget.objects.create(name=name, kind=kind, url=url))
        wanted = [str(a).strip() for a in getattr(settings, "ALERT_EMAIL_TO", []) if str(a).strip()]
        known = {
            address.lower()
            for email_to in AlertTarget.objects.filter(kind=Kind.EMAIL).values_list("email_to", flat=True)
            for address in addresses(email_to)
        }
        missing = [a for a in dict.fromkeys(wanted) if a.lower() not in known]
        if missing:
            created.append(
                AlertTarget.objects.create(name="Email", kind=Kind.EMAIL, email_to=", ".join(missing))
            )
    for target in created:
        log.info("alert target %r added from the environment", target.name)
    return created
