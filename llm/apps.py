from __future__ import annotations

from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "llm"
    verbose_name = "LLM availability"

    def ready(self) -> None:
        from llm import signals

        signals.connect()
