"""Reload the blocked terms once a change is committed, whoever made it (admin, chat, shell)."""

from __future__ import annotations

import threading
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from chatbridge.moderation.models import BlockedTerm
from chatbridge.moderation.terms import blocked_terms
from serdabot.broadcast import notify_changed

# Per thread, because a transaction belongs to one thread's connection: another
# thread's commit must not swallow this thread's pending reload.
_pending = threading.local()


def _reload_if_pending() -> None:
    # Deleting many rows fires one signal each; one reload covers them all.
    if getattr(_pending, "reload", False):
        _pending.reload = False
        blocked_terms.load()
        # Bot workers in other processes keep their own snapshot: tell them too.
        notify_changed("moderation")


def _changed(sender: type[BlockedTerm], using: str, **kwargs: Any) -> None:
    _pending.reload = True
    # After the commit: a reload inside the admin's transaction could be rolled back.
    transaction.on_commit(_reload_if_pending, using=using, robust=True)


def connect() -> None:
    post_save.connect(_changed, sender=BlockedTerm, dispatch_uid="moderation.BlockedTerm.saved")
    post_delete.connect(_changed, sender=BlockedTerm, dispatch_uid="moderation.BlockedTerm.deleted")
