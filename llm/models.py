"""Availability history: what the dashboard reads.

No chat text or user names are stored unless HISTORY_STORE_CHAT asks for it.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from serdabot.process import HOST_LENGTH, ROLE_LENGTH


class Tier(models.TextChoices):
    LOCAL = "local", _("Local LLM")
    OPENAI = "openai", "OpenAI"


class Source(models.TextChoices):
    LOCAL = "local", _("Local LLM")
    OPENAI = "openai", "OpenAI"
    FALLBACK = "fallback", _("Fallback phrase")


class WrittenBy(models.Model):
    """The process that recorded a history row (serdabot/process.py): which of several bots said it."""

    host = models.CharField(_("host"), max_length=HOST_LENGTH, blank=True)
    pid = models.PositiveIntegerField(_("pid"), null=True, blank=True)
    role = models.CharField(
        _("role"),
        max_length=ROLE_LENGTH,
        blank=True,
        help_text=_("web, bot, adapters, worker, console or other"),
    )

    class Meta:
        abstract = True


class Probe(WrittenBy):
    """One health check of one tier (boot detection, background probe or `llmstatus`)."""

    class Kind(models.TextChoices):
        BOOT = "boot", _("Boot detection")
        MODELS = "models", "GET /models"
        COMPLETION = "completion", _("1-token completion")

    created = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    tier = models.CharField(_("tier"), max_length=16, choices=Tier.choices)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.MODELS)
    ok = models.BooleanField(_("ok"))
    latency_ms = models.FloatField(_("latency (ms)"), null=True, blank=True)
    error = models.CharField(
        _("error"), max_length=64, blank=True, help_text=_("Error class when the probe failed")
    )
    detail = models.CharField(
        _("detail"), max_length=300, blank=True, help_text=_("Model found, or the error message")
    )

    class Meta:
        indexes = [
            models.Index(fields=["tier", "created"]),
            # Covers the dashboard's uptime and latency queries: no table lookups per probe.
            models.Index(fields=["tier", "created", "ok", "latency_ms"], name="llm_probe_dashboard_idx"),
        ]
        ordering = ["-created"]
        verbose_name = _("probe")
        verbose_name_plural = _("probes")

    def __str__(self) -> str:
        return f"{self.tier} {'ok' if self.ok else self.error} @ {self.created:%Y-%m-%d %H:%M:%S}"


class CascadeCall(WrittenBy):
    """One chat message that asked the bot something, and who answered it."""

    created = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    platform = models.CharField(_("platform"), max_length=16)
    channel = models.CharField(_("channel"), max_length=100, blank=True)
    intent = models.CharField(_("intent"), max_length=50)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    latency_ms = models.FloatField(_("latency (ms)"))
    # {"local": "ConnectError", ...}: the error class of each tier that failed or was skipped.
    errors = models.JSONField(_("errors"), default=dict, blank=True)
    timed_out = models.BooleanField(_("timed out"), default=False)
    # The phrase set that went out when no model answered ("ask", "chill", "ask_timeout", ...).
    fallback_intent = models.CharField(_("fallback intent"), max_length=50, blank=True)
    # Time to the first streamed token of the answer that went out (None: no model answered).
    first_token_ms = models.FloatField(_("first token (ms)"), null=True, blank=True)
    # Each tier tried or skipped, in order: [{"tier", "outcome", "error", "ms", "first_token_ms"}].
    tiers = models.JSONField(_("tiers"), default=list, blank=True)
    # Only filled when HISTORY_STORE_CHAT is on.
    user = models.CharField(_("user"), max_length=100, blank=True)
    text = models.TextField(_("text"), blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["source", "created"]),
            # Covers the dashboard's replies-by-source counts over a time range.
            models.Index(fields=["created", "source"], name="llm_call_dashboard_idx"),
        ]
        ordering = ["-created"]
        verbose_name = _("cascade call")
        verbose_name_plural = _("cascade calls")

    def __str__(self) -> str:
        return f"{self.platform}/{self.intent} -> {self.source} ({self.latency_ms:.0f} ms)"


class TierEvent(WrittenBy):
    """A tier's state changed (breaker opened, closed, cooling down): the dashboard's incidents."""

    class State(models.TextChoices):
        UP = "up", _("Up")
        DOWN = "down", _("Down")
        COOLING = "cooling", _("Cooling down")
        # The model is being loaded (LM Studio on first use): chat skips the tier meanwhile.
        WARMING = "warming", _("Warming up")
        # The paid tier reached its daily budget: skipped until local midnight.
        BUDGET = "budget", _("Daily budget reached")
        NOT_CONFIGURED = "not_configured", _("Not configured")
        # LLM_MODE=disabled, or switched off live (llm.cascade.switches).
        DISABLED = "disabled", _("Disabled")
        # The streamer paused the LLM (the GPU is busy with a game): chat gets phrases.
        PAUSED = "paused", _("Paused")
        # The bot stopped (one process, no shared state): nothing was expected of the tiers.
        STOPPED = "stopped", _("Bot stopped")

    created = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    tier = models.CharField(_("tier"), max_length=16, choices=Tier.choices)
    state = models.CharField(_("state"), max_length=16, choices=State.choices)
    error = models.CharField(_("error"), max_length=64, blank=True)
    detail = models.CharField(_("detail"), max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tier", "created"])]
        ordering = ["-created"]
        verbose_name = _("tier event")
        verbose_name_plural = _("tier events")

    def __str__(self) -> str:
        return f"{self.tier} -> {self.state} @ {self.created:%Y-%m-%d %H:%M:%S}"


class Scope(models.TextChoices):
    """Whose rows: the bot's own processes, or console runs (`manage.py chat`)."""

    BOT = "bot", _("Bot")
    CONSOLE = "console", _("Console")


class Period(WrittenBy):
    """A span of one tier's time, opened and closed by the history writer from its state changes."""

    tier = models.CharField(max_length=16, choices=Tier.choices)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.BOT)
    started = models.DateTimeField()
    ended = models.DateTimeField(null=True, blank=True, help_text="Empty: still ongoing")
    # Summed by the database for a window's downtime without converting a date per row.
    seconds = models.FloatField(null=True, blank=True, help_text="Its length, once it has ended")
    # The state that opened it (down, cooling, warming, disabled, paused, ...).
    state = models.CharField(max_length=16, choices=TierEvent.State.choices)
    cause = models.CharField(max_length=64, blank=True, help_text="Error class when it started")
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        abstract = True
        ordering = ["-started"]

    @property
    def ongoing(self) -> bool:
        return self.ended is None


class Incident(Period):
    """Downtime: a tier that had been up failed, until it answered again."""

    class Meta(Period.Meta):
        indexes = [
            # Windows ask "started before the end, and ended after the start (or not yet)".
            models.Index(
                fields=["scope", "started", "ended", "tier", "seconds"], name="llm_incident_started_idx"
            ),
            models.Index(fields=["scope", "ended"], name="llm_incident_ended_idx"),
            models.Index(fields=["tier", "scope", "ended"], name="llm_incident_open_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.tier} incident @ {self.started:%Y-%m-%d %H:%M:%S}"


class Absence(Period):
    """Time a tier was not expected to answer: never found, disabled, paused, over budget."""

    class Kind(models.TextChoices):
        NEVER_FOUND = "never_found", _("Never found since configured")
        DISABLED = "disabled", _("Disabled")
        NOT_CONFIGURED = "not_configured", _("Not configured")
        PAUSED = "paused", _("Paused")
        BUDGET = "budget", _("Daily budget reached")
        OFFLINE = "offline", _("Bot stopped")

    kind = models.CharField(max_length=16, choices=Kind.choices)

    class Meta(Period.Meta):
        indexes = [
            models.Index(
                fields=["scope", "started", "ended", "tier", "seconds"], name="llm_absence_started_idx"
            ),
            models.Index(fields=["scope", "ended"], name="llm_absence_ended_idx"),
            models.Index(fields=["tier", "scope", "ended"], name="llm_absence_open_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.tier} {self.kind} @ {self.started:%Y-%m-%d %H:%M:%S}"


class TierStatus(models.Model):
    """Each tier's latest state per scope, kept by the history writer: what the page shows now."""

    tier = models.CharField(max_length=16, choices=Tier.choices)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.BOT)
    state = models.CharField(max_length=16, choices=TierEvent.State.choices)
    since = models.DateTimeField(help_text="When the tier entered this state")
    error = models.CharField(max_length=64, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    # Seen up since it was last configured: until then a failure is "never found", not downtime.
    up_seen = models.BooleanField(default=False)
    first_seen = models.DateTimeField(help_text="The tier's first recorded state")
    changed = models.DateTimeField(help_text="The latest state change recorded")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tier", "scope"], name="llm_tierstatus_unique")]
        verbose_name_plural = "tier statuses"

    def __str__(self) -> str:
        return f"{self.tier} ({self.scope}): {self.state}"


class Rollup(models.Model):
    """Counts and a latency histogram of one series over one local hour or day.

    Series: "probe" (key: tier; `ok` counts successes, the histogram their latency),
    "reply" (key: source; end-to-end reply latency) and "first_token" (key: source).
    The histogram's buckets are `llm.history.histogram.BOUNDS`.
    """

    class Period(models.TextChoices):
        HOUR = "hour", _("Hour")
        DAY = "day", _("Day")

    class Series(models.TextChoices):
        PROBE = "probe", _("Probe latency")
        REPLY = "reply", _("Reply latency")
        FIRST_TOKEN = "first_token", _("Time to first token")

    period = models.CharField(max_length=8, choices=Period.choices)
    start = models.DateTimeField(help_text="The local hour's or day's first instant")
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.BOT)
    series = models.CharField(max_length=16, choices=Series.choices)
    key = models.CharField(max_length=16)
    count = models.PositiveIntegerField(default=0)
    ok = models.PositiveIntegerField(default=0)
    total_ms = models.FloatField(default=0.0)
    histogram = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["period", "start", "scope", "series", "key"], name="llm_rollup_unique"
            )
        ]
        indexes = [models.Index(fields=["period", "series", "start"], name="llm_rollup_window_idx")]
        ordering = ["period", "start"]

    def __str__(self) -> str:
        return f"{self.period} {self.start:%Y-%m-%d %H:%M} {self.series}/{self.key}: {self.count}"


class LiveSwitches(models.Model):
    """Switches the streamer flips in the admin, applied by every process within seconds (one row).

    Empty choices follow the environment (LLM_MODE, FALLBACK_MODE), read at start.
    """

    llm_mode = models.CharField(
        _("LLM mode"),
        max_length=16,
        blank=True,
        choices=[
            ("", _("As LLM_MODE says")),
            ("auto", _("Auto")),
            ("enabled", _("Enabled")),
            ("disabled", _("Disabled")),
        ],
    )
    paused = models.BooleanField(
        _("paused"),
        default=False,
        help_text=_("Pause the LLM (the GPU is busy with a game): chat gets phrases meanwhile."),
    )
    fallback_mode = models.CharField(
        _("fallback mode"),
        max_length=16,
        blank=True,
        choices=[
            ("", _("As FALLBACK_MODE says")),
            ("fun", _("Fun phrases")),
            ("silent", _("One neutral sentence")),
            ("minimal", _("🤖 only")),
        ],
    )
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("live switches")
        verbose_name_plural = _("live switches")

    def __str__(self) -> str:
        return gettext("Live switches")


class BootDetection(WrittenBy):
    """One `runbot`/`chat` start: what boot detection found."""

    created = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    mode = models.CharField(_("mode"), max_length=16)
    found = models.BooleanField(_("found"))
    endpoint = models.CharField(_("endpoint"), max_length=300)
    model = models.CharField(_("model"), max_length=200, blank=True)
    latency_ms = models.FloatField(_("latency (ms)"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=64, blank=True)
    process = models.CharField(_("process"), max_length=32, blank=True, help_text=_("runbot, chat, ..."))

    class Meta:
        ordering = ["-created"]
        verbose_name = _("boot detection")
        verbose_name_plural = _("boot detections")
        indexes = [models.Index(fields=["role", "created"], name="llm_boot_role_idx")]

    def __str__(self) -> str:
        return f"boot {'found' if self.found else 'not found'} @ {self.created:%Y-%m-%d %H:%M:%S}"


class Usage(WrittenBy):
    """One request sent to a tier that reports usage (the OpenAI tier's budget counts these)."""

    created = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    tier = models.CharField(_("tier"), max_length=16, choices=Tier.choices)
    model = models.CharField(_("model"), max_length=200, blank=True)
    prompt_tokens = models.PositiveIntegerField(_("prompt tokens"), default=0)
    completion_tokens = models.PositiveIntegerField(_("answer tokens"), default=0)
    # False when the server did not report usage and the tokens were estimated from the text.
    reported = models.BooleanField(_("reported"), default=True)

    class Meta:
        indexes = [models.Index(fields=["tier", "created"])]
        ordering = ["-created"]
        verbose_name = _("usage")
        verbose_name_plural = _("usage")

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __str__(self) -> str:
        return f"{self.tier} {self.model} {self.total_tokens} tokens @ {self.created:%Y-%m-%d %H:%M:%S}"


class BudgetSettings(models.Model):
    """The paid tier's daily limits, editable without a restart (one row; empty: the environment's)."""

    daily_requests = models.PositiveIntegerField(
        _("daily requests"),
        null=True,
        blank=True,
        help_text=_("Requests to OpenAI per local day. Empty: OPENAI_DAILY_REQUESTS."),
    )
    daily_tokens = models.PositiveIntegerField(
        _("daily tokens"),
        null=True,
        blank=True,
        help_text=_("Tokens (prompt + answer) per local day. Empty: OPENAI_DAILY_TOKENS."),
    )

    class Meta:
        verbose_name = _("OpenAI daily budget")
        verbose_name_plural = _("OpenAI daily budget")

    def __str__(self) -> str:
        return gettext("OpenAI daily budget")


class ModelPrice(models.Model):
    """Price per million tokens of one model, for the dashboard's cost estimate."""

    model = models.CharField(_("model"), max_length=200, unique=True)
    input_per_million = models.DecimalField(
        _("input per million"), max_digits=10, decimal_places=4, help_text=_("USD per 1M prompt tokens")
    )
    output_per_million = models.DecimalField(
        _("output per million"), max_digits=10, decimal_places=4, help_text=_("USD per 1M answer tokens")
    )

    class Meta:
        ordering = ["model"]
        verbose_name = _("model price")
        verbose_name_plural = _("model prices")

    def __str__(self) -> str:
        return self.model


# The alerts' models live with the code that sends them; imported here so Django registers them.
from llm.alerts.models import AdapterOutage, Alert, AlertRules, AlertTarget  # noqa: E402, F401
