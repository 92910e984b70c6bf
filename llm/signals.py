"""Tell every bot process that the OpenAI budget or a model price changed, once committed."""

from __future__ import annotations

import threading
from typing import Any

from django.db import transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save

from llm.models import BudgetSettings, ModelPrice
from serdabot.broadcast import notify_changed

# Per thread, as a transaction belongs to one thread's connection (see fallbacks/signals.py).
_pending = threading.local()


def _notify_if_pending() -> None:
    # The price list saves one row per edited line in one commit: one notice covers them.
    if getattr(_pending, "notice", False):
        _pending.notice = False
        notify_changed("budget")


def _changed(sender: type[Model], using: str, **kwargs: Any) -> None:
    # After the commit: a worker re-reading the limits sooner would still see the old row.
    _pending.notice = True
    transaction.on_commit(_notify_if_pending, using=using, robust=True)


def connect() -> None:
    for model in (BudgetSettings, ModelPrice):
        post_save.connect(_changed, sender=model, dispatch_uid=f"llm.{model.__name__}.saved")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"llm.{model.__name__}.deleted")
