"""Alert targets, rules and the alerts sent: the streamer hears of an outage before chat does."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class AlertTarget(models.Model):
    """Where alerts go: a Discord webhook, a generic JSON webhook, or email (Django's mail settings)."""

    class Kind(models.TextChoices):
        DISCORD = "discord", _("Discord webhook")
        WEBHOOK = "webhook", _("JSON webhook")
        EMAIL = "email", _("Email")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    url = models.URLField(
        _("URL"), max_length=500, blank=True, help_text=_("The webhook's URL (Discord or JSON)")
    )
    email_to = models.CharField(
        _("email to"), max_length=500, blank=True, help_text=_("Addresses, comma-separated")
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    created = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        app_label = "llm"
        ordering = ["name"]
        verbose_name = _("alert target")
        verbose_name_plural = _("alert targets")

    def __str__(self) -> str:
        return self.name


class AlertRules(models.Model):
    """Which events alert (one row; defaults apply until it is saved)."""

    down_after = models.PositiveIntegerField(
        _("down after"),
        default=60,
        help_text=_("Seconds a tier must stay down, or an adapter failing, before an alert goes out"),
    )
    on_down = models.BooleanField(
        _("on down"), default=True, help_text=_("A tier down longer than the delay above")
    )
    on_back_up = models.BooleanField(
        _("on back up"), default=True, help_text=_("A tier that was alerted down answers again")
    )
    on_budget = models.BooleanField(
        _("on budget"), default=True, help_text=_("The OpenAI daily budget is reached")
    )
    on_adapter = models.BooleanField(
        _("on adapter"), default=True, help_text=_("A chat adapter fails, or works again")
    )

    class Meta:
        app_label = "llm"
        verbose_name = _("alert rules")
        verbose_name_plural = _("alert rules")

    def __str__(self) -> str:
        return gettext("Alert rules")


class Alert(models.Model):
    """One alert for one event and one target: sent once, retried with backoff, recorded."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    class Event(models.TextChoices):
        DOWN = "down", _("Tier down")
        UP = "up", _("Tier back up")
        BUDGET = "budget", _("Budget reached")
        ADAPTER_FAILING = "adapter_failing", _("Adapter failing")
        ADAPTER_BACK = "adapter_back", _("Adapter back")
        TEST = "test", _("Test alert")

    created = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    target = models.ForeignKey(
        AlertTarget, on_delete=models.CASCADE, related_name="alerts", verbose_name=_("target")
    )
    event = models.CharField(_("event"), max_length=16, choices=Event.choices)
    # What makes the event one event ("incident:42:down", "budget:2026-12-06", ...): sent once per target.
    key = models.CharField(_("key"), max_length=200)
    # The tier ("local", "openai") or the platform ("twitch", "discord") the event is about.
    about = models.CharField(_("about"), max_length=32, blank=True)
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("body"), blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_try = models.DateTimeField(_("next try"), default=timezone.now)
    sent = models.DateTimeField(_("sent"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)

    class Meta:
        app_label = "llm"
        ordering = ["-created"]
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
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

    platform = models.CharField(_("platform"), max_length=16)
    started = models.DateTimeField(_("started"))
    ended = models.DateTimeField(_("ended"), null=True, blank=True, help_text=_("Empty: still failing"))
    error = models.CharField(_("error"), max_length=500, blank=True)

    class Meta:
        app_label = "llm"
        ordering = ["-started"]
        verbose_name = _("adapter outage")
        verbose_name_plural = _("adapter outages")
        constraints = [
            # At most one open spell per platform: two processes opening one at once get the same row.
            models.UniqueConstraint(
                fields=["platform"], condition=models.Q(ended__isnull=True), name="llm_adapteroutage_open"
            )
        ]

    def __str__(self) -> str:
        return f"{self.platform} failing @ {self.started:%Y-%m-%d %H:%M:%S}"
