"""Alert targets, rules and the alerts sent: the streamer hears of an outage before chat does."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AlertTarget(models.Model):
    """Where alerts go: a Discord webhook, a generic JSON webhook, or email (Django's mail settings)."""

    class Kind(models.TextChoices):
        DISCORD = "discord", "Discord webhook"
        WEBHOOK = "webhook", "JSON webhook"
        EMAIL = "email", "Email"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    url = models.URLField(max_length=500, blank=True, help_text="The webhook's URL (Discord or JSON)")
    email_to = models.CharField(max_length=500, blank=True, help_text="Addresses, comma-separated")
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "llm"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AlertRules(models.Model):
    """Which events alert (one row; defaults apply until it is saved)."""

    down_after = models.PositiveIntegerField(
        default=60,
        help_text="Seconds a tier must stay down, or an adapter failing, before an alert goes out",
    )
    on_down = models.BooleanField(default=True, help_text="A tier down longer than the delay above")
    on_back_up = models.BooleanField(default=True, help_text="A tier that was alerted down answers again")
    on_budget = models.BooleanField(default=True, help_text="The OpenAI daily budget is reached")
    on_adapter = models.BooleanField(default=True, help_text="A chat adapter fails, or works again")

    class Meta:
        app_label = "llm"
        verbose_name = "alert rules"
        verbose_name_plural = "alert rules"

    def __str__(self) -> str:
        return "Alert rules"


class Alert(models.Model):
    """One alert for one event and one target: sent once, retried with backoff, recorded."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    class Event(models.TextChoices):
        DOWN = "down", "Tier down"
        UP = "up", "Tier back up"
        BUDGET = "budget", "Budget reached"
        ADAPTER_FAILING = "adapter_failing", "Adapter failing"
        ADAPTER_BACK = "adapter_back", "Adapter back"
        TEST = "test", "Test alert"

    created = models.DateTimeField(default=timezone.now, db_index=True)
    target = models.ForeignKey(AlertTarget, on_delete=models.CASCADE, related_name="alerts")
    event = models.CharField(max_length=16, choices=Event.choices)
    # What makes the event one event ("incident:42:down", "budget:2026-12-06", ...): sent once per target.
    key = models.CharField(max_length=200)
    # The tier ("local", "openai") or the platform ("twitch", "discord") the event is about.
    about = models.CharField(max_length=32, blank=True)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_try = models.DateTimeField(default=timezone.now)
    sent = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        app_label = "llm"
        ordering = ["-created"]
        constraints = [models.UniqueConstraint(fields=["target", "key"], name="llm_alert_once")]
        indexes = [models.Index(fields=["status", "next_try"], name="llm_alert_due_idx")]

    def __str__(self) -> str:
        return f"{self.event} -> {self.target_id} ({self.status})"


class AdapterOutage(models.Model):
    """A chat adapter failing: from the first time it was seen failing until it connected again.

    `AdapterState` only says what an adapter is doing now. An alert needs the time it
    started failing, the same in every process that watches it, so that one failing
    spell is one alert however many processes see it: this row holds that time.
    """

    platform = models.CharField(max_length=16)
    started = models.DateTimeField()
    ended = models.DateTimeField(null=True, blank=True, help_text="Empty: still failing")
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        app_label = "llm"
        ordering = ["-started"]
        constraints = [
            # At most one open spell per platform: two processes opening one at once get the same row.
            models.UniqueConstraint(
                fields=["platform"], condition=models.Q(ended__isnull=True), name="llm_adapteroutage_open"
            )
        ]

    def __str__(self) -> str:
        return f"{self.platform} failing @ {self.started:%Y-%m-%d %H:%M:%S}"
