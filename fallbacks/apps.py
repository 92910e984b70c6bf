from __future__ import annotations

from django.apps import AppConfig


class FallbacksConfig(AppConfig):
    name = "fallbacks"
    verbose_name = "Fallback phrases"

    def ready(self) -> None:
        from fallbacks import signals

        signals.connect()
