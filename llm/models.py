"""Availability history: what the dashboard reads.

No chat text or user names are stored unless HISTORY_STORE_CHAT asks for it.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Tier(models.TextChoices):
    LOCAL = "local", "Local LLM"
    OPENAI = "openai", "OpenAI"


class Source(models.TextChoices):
    LOCAL = "local", "Local LLM"
    OPENAI = "openai", "OpenAI"
    FALLBACK = "fallback", "Fallback phrase"


class Probe(models.Model):
    """One health check of one tier (boot detection, background probe or `llmstatus`)."""

    class Kind(models.TextChoices):
        BOOT = "boot", "Boot detection"
        MODELS = "models", "GET /models"
        COMPLETION = "completion", "1-token completion"

    created = models.DateTimeField(default=timezone.now, db_index=True)
    tier = models.CharField(max_length=16, choices=Tier.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.MODELS)
    ok = models.BooleanField()
    latency_ms = models.FloatField(null=True, blank=True)
    error = models.CharField(max_length=64, blank=True, help_text="Error class when the probe failed")
    detail = models.CharField(max_length=300, blank=True, help_text="Model found, or the error message")

    class Meta:
        indexes = [
            models.Index(fields=["tier", "created"]),
            # Covers the dashboard's uptime and latency queries: no table lookups per probe.
            models.Index(fields=["tier", "created", "ok", "latency_ms"], name="llm_probe_dashboard_idx"),
        ]
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.tier} {'ok' if self.ok else self.error} @ {self.created:%Y-%m-%d %H:%M:%S}"


class CascadeCall(models.Model):
    """One chat message that asked the bot something, and who answered it."""

    created = models.DateTimeField(default=timezone.now, db_index=True)
    platform = models.CharField(max_length=16)
    channel = models.CharField(max_length=100, blank=True)
    intent = models.CharField(max_length=50)
    source = models.CharField(max_length=16, choices=Source.choices)
    latency_ms = models.FloatField()
    # {"local": "ConnectError", ...}: the error class of each tier that failed or was skipped.
    errors = models.JSONField(default=dict, blank=True)
    timed_out = models.BooleanField(default=False)
    # Only filled when HISTORY_STORE_CHAT is on.
    user = models.CharField(max_length=100, blank=True)
    text = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["source", "created"]),
            # Covers the dashboard's replies-by-source counts over a time range.
            models.Index(fields=["created", "source"], name="llm_call_dashboard_idx"),
        ]
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.platform}/{self.intent} -> {self.source} ({self.latency_ms:.0f} ms)"


class TierEvent(models.Model):
    """A tier's state changed (breaker opened, closed, cooling down): the dashboard's incidents."""

    class State(models.TextChoices):
        UP = "up", "Up"
        DOWN = "down", "Down"
        COOLING = "cooling", "Cooling down"
        NOT_CONFIGURED = "not_configured", "Not configured"

    created = models.DateTimeField(default=timezone.now, db_index=True)
    tier = models.CharField(max_length=16, choices=Tier.choices)
    state = models.CharField(max_length=16, choices=State.choices)
    error = models.CharField(max_length=64, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tier", "created"])]
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.tier} -> {self.state} @ {self.created:%Y-%m-%d %H:%M:%S}"


class BootDetection(models.Model):
    """One `runbot`/`chat` start: what boot detection found."""

    created = models.DateTimeField(default=timezone.now, db_index=True)
    mode = models.CharField(max_length=16)
    found = models.BooleanField()
    endpoint = models.CharField(max_length=300)
    model = models.CharField(max_length=200, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    error = models.CharField(max_length=64, blank=True)
    process = models.CharField(max_length=32, blank=True, help_text="runbot, chat, ...")

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"boot {'found' if self.found else 'not found'} @ {self.created:%Y-%m-%d %H:%M:%S}"
