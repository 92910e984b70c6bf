from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChatbridgeConfig(AppConfig):
    name = "chatbridge"
    verbose_name = _("Chat bridge")

    def ready(self) -> None:
        from chatbridge import signals  # noqa: F401  (connects the receivers)
        from chatbridge.moderation import signals as moderation_signals

        moderation_signals.connect()

        from chatbridge.moderation.models import HeldReply
        from llm.history.retention import keep_as_history

        # Held replies may hold chat text (HISTORY_STORE_CHAT): kept as long as the history.
        keep_as_history(HeldReply)
