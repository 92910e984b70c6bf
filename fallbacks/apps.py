from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FallbacksConfig(AppConfig):
    name = "fallbacks"
    verbose_name = _("Fallback phrases")

    def ready(self) -> None:
        from fallbacks import signals

        signals.connect()
