"""Tell every bot process that the OpenAI budget, a model price or the live switches changed."""

from __future__ import annotations

import threading
from typing import Any

from django.db import transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save

from llm.models import BudgetSettings, LiveSwitches, ModelPrice
from serdabot.broadcast import notify_changed

# What each model's change is announced as (the refreshers in chatbridge/bot.py).
NOTICES: dict[type[Model], str] = {BudgetSettings: "budget", ModelPrice: "budget", LiveSwitches: "switches"}

# Per thread, as a transaction belongs to one thread's connection (see fallbacks/signals.py).
_pending = threading.local()


def _notify_pending() -> None:
    # The price list saves one row per edited line in one commit: one notice covers them.
    pending: set[str] = getattr(_pending, "notices", set())
    _pending.notices = set()
    for what in sorted(pending):
        notify_changed(what)


def _changed(sender: type[Model], using: str, **kwargs: Any) -> None:
    # After the commit: a worker re-reading the row sooner would still see the old one.
    _pending.notices = getattr(_pending, "notices", set()) | {NOTICES[sender]}
    transaction.on_commit(_notify_pending, using=using, robust=True)


def connect() -> None:
    for model in NOTICES:
        post_save.connect(_changed, sender=model, dispatch_uid=f"llm.{model.__name__}.saved")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"llm.{model.__name__}.deleted")
