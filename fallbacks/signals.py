"""Reload the cache once the edit is committed, whoever made it (admin, shell, service)."""

from __future__ import annotations

import threading
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from fallbacks import cache
from fallbacks.models import Intent, Phrase
from serdabot.broadcast import notify_changed

# Per thread, because a transaction belongs to one thread's connection: another
# thread's commit must not swallow this thread's pending reload.
_pending = threading.local()


def schedule_reload(using: str | None = None) -> None:
    """Reload after the current transaction commits (at once outside a transaction).

    Also for writes that send no signal, such as queryset.update().
    """
    _pending.reload = True
    transaction.on_commit(_reload_if_pending, using=using, robust=True)


def _reload_if_pending() -> None:
    # Deleting an intent fires one signal per phrase; one reload covers them all.
    if getattr(_pending, "reload", False):
        _pending.reload = False
        cache.reload()
        # Bot workers in other processes keep their own cache: tell them too.
        notify_changed("fallbacks")


def _changed(sender: type[Intent | Phrase], using: str, **kwargs: Any) -> None:
    schedule_reload(using)


def connect() -> None:
    for model in (Intent, Phrase):
        post_save.connect(_changed, sender=model, dispatch_uid=f"fallbacks.{model.__name__}.saved")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"fallbacks.{model.__name__}.deleted")
