"""Reload the in-memory channel settings when the admin (or anything else) saves a row."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from chatbridge.channel_settings import settings_cache
from chatbridge.models import ChannelSettings
from serdabot.broadcast import notify_changed


def _reload_and_announce() -> None:
    settings_cache.load()
    # Workers in other processes keep their own snapshot: tell them too.
    notify_changed("channels")


@receiver([post_save, post_delete], sender=ChannelSettings)
def reload_channel_settings(**kwargs: Any) -> None:
    # After the commit: a reload inside the admin's transaction could be rolled back.
    transaction.on_commit(_reload_and_announce)
