from __future__ import annotations

from django.apps import AppConfig


class ChatbridgeConfig(AppConfig):
    name = "chatbridge"
    verbose_name = "Chat bridge"

    def ready(self) -> None:
        from chatbridge import signals  # noqa: F401  (connects the receivers)
