"""`python manage.py reencrypt`: store every secret again with the current key (key rotation)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from serdabot.encryption import rotate_all


class Command(BaseCommand):
    help = (
        "Encrypt every stored secret (Twitch and Discord tokens, the Twitch client secret) again with "
        "SERDABOT_ENCRYPTION_KEY, after a rotation: then SERDABOT_ENCRYPTION_KEY_OLD can be dropped."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rewritten, unreadable = rotate_all()
        self.stdout.write(f"{rewritten} row(s) with secrets written again with the current key.")
        if unreadable:
            raise CommandError(
                f"{unreadable} row(s) hold secrets no configured key can read: put the key they were "
                "stored with in SERDABOT_ENCRYPTION_KEY_OLD, or connect again from the setup pages."
            )
