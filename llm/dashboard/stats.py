"""What the dashboard shows about each tier now, and the OpenAI tier's usage today.

Windows (uptime, incidents, latency) are read by llm.dashboard.availability and
llm.dashboard.series; this module holds the rest, each a small query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from llm.history.periods import BAD_STATES
from llm.models import BudgetSettings, ModelPrice, Probe, Scope, Tier, TierStatus, Usage
from serdabot.redact import redact

LABELS = {
    "up": _("Up"),
    "down": _("Down"),
    "cooling": _("Cooling down"),
    "warming": _("Warming up"),
    "budget": _("Daily budget reached"),
    "not_configured": _("Not configured"),
    "disabled": _("Disabled"),
    "paused": _("Paused"),
    "never_found": _("Not detected"),
    "stopped": _("Bot stopped"),
    "unknown": _("No data yet"),
}
# One line each: what the streamer can do about a state that is not downtime.
ADVICE = {
    ("local", "never_found"): _("LM Studio not detected: start it, or set LLM_MODE=disabled."),
    ("openai", "never_found"): _(
        "OpenAI has not answered since it was configured: check OPENAI_API_KEY and OPENAI_BASE_URL."
    ),
    ("local", "disabled"): _(
        "The LLM is switched off (LLM_MODE=disabled, or the live switches in the admin): chat gets phrases."
    ),
    ("openai", "disabled"): _(
        "The LLM is switched off (LLM_MODE=disabled, or the live switches in the admin): chat gets phrases."
    ),
    ("openai", "not_configured"): _("No OpenAI key: set OPENAI_API_KEY to add OpenAI to the cascade."),
    ("local", "not_configured"): _("Not configured."),
    ("local", "paused"): _("Paused from the admin: chat gets fallback phrases until you resume it."),
    ("openai", "paused"): _("Paused from the admin: chat gets fallback phrases until you resume it."),
    ("openai", "budget"): _(
        "The daily budget is reached: it resets at local midnight, or raise it in the admin."
    ),
    ("local", "stopped"): _("The bot is not running: start it with `python manage.py runbot`."),
    ("openai", "stopped"): _("The bot is not running: start it with `python manage.py runbot`."),
    ("local", "unknown"): _("Nothing recorded yet: start the bot with `python manage.py runbot`."),
    ("openai", "unknown"): _("Nothing recorded yet: start the bot with `python manage.py runbot`."),
}


@dataclass(frozen=True, slots=True)
class TierState:
    """A tier's state as the page tells it: downtime only for a tier that was up and failed."""

    tier: str
    state: str  # a TierEvent.State value, or "unknown"
    since: datetime | None
    error: str = ""
    detail: str = ""
    up_seen: bool = True

    @property
    def shown(self) -> str:
        """The state shown: a failure before the tier ever answered is "never_found"."""
        if self.state in BAD_STATES and not self.up_seen:
            return "never_found"
        return self.state

    @property
    def label(self) -> str:
        return str(LABELS.get(self.shown, self.shown))

    @property
    def tone(self) -> str:
        """up (green), down (red: an incident), warn (cooling, warming) or grey (not downtime)."""
        shown = self.shown
        if shown == "up":
            return "up"
        if shown == "down":
            return "down"
        if shown in ("cooling", "warming"):
            return "warn"
        return "grey"

    @property
    def advice(self) -> str:
        found = ADVICE.get((self.tier, self.shown))
        return str(found) if found is not None else ""


def current_states(scopes: tuple[str, ...]) -> dict[str, TierState]:
    """Each tier's latest state among the scopes shown (the most recent change wins)."""
    result = {tier: TierState(tier, "unknown", None) for tier in Tier.values}
    # The bot's own state wins over a console run's (its "stopped" says nothing of the bot).
    rows = sorted(
        TierStatus._default_manager.filter(scope__in=scopes),
        key=lambda row: (row.scope == Scope.BOT, row.changed),
    )
    for row in rows:
        result[row.tier] = TierState(
            row.tier, row.state, row.since, redact(row.error), redact(row.detail), row.up_seen
        )
    return result


def heartbeat(tier: str, end: datetime, limit: int = 60) -> list[Probe]:
    """The latest probes of one tier before `end`, oldest first."""
    probes = list(
        Probe._default_manager.filter(tier=tier, created__lt=end)
        .order_by("-created", "-pk")
        .only("created", "tier", "ok", "latency_ms", "error", "detail")[:limit]
    )
    probes.reverse()
    for probe in probes:
        # Redacted when read too: rows stored before redaction existed may hold a key.
        probe.error, probe.detail = redact(probe.error), redact(probe.detail)
    return probes


@dataclass(frozen=True, slots=True)
class ModelUsage:
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    estimated: int  # requests whose tokens were estimated from the text (not reported)
    cost: Decimal | None  # None: no price for this model


@dataclass(frozen=True, slots=True)
class UsageToday:
    """The OpenAI tier's usage since local midnight, against its daily limits."""

    since: datetime
    models: list[ModelUsage]
    request_limit: int | None  # effective: the admin's value when set, else the environment's
    token_limit: int | None

    @property
    def requests(self) -> int:
        return sum(m.requests for m in self.models)

    @property
    def prompt_tokens(self) -> int:
        return sum(m.prompt_tokens for m in self.models)

    @property
    def completion_tokens(self) -> int:
        return sum(m.completion_tokens for m in self.models)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def estimated(self) -> int:
        return sum(m.estimated for m in self.models)

    @property
    def cost(self) -> Decimal:
        """Summed over the models with a price; see `unpriced` for the others."""
        return sum((m.cost for m in self.models if m.cost is not None), Decimal(0))

    @property
    def unpriced(self) -> list[str]:
        return [m.model or "?" for m in self.models if m.cost is None]


def effective_limits(env_requests: int | None, env_tokens: int | None) -> tuple[int | None, int | None]:
    """The daily limits in force: the admin's values where set, else the environment's."""
    row = BudgetSettings._default_manager.order_by("pk").first()
    if row is None:
        return env_requests, env_tokens
    return (
        row.daily_requests if row.daily_requests is not None else env_requests,
        row.daily_tokens if row.daily_tokens is not None else env_tokens,
    )


def openai_today(now: datetime, env_requests: int | None = None, env_tokens: int | None = None) -> UsageToday:
    """Today's requests, tokens and estimated cost of the OpenAI tier, one row per model."""
    local = timezone.localtime(now)
    since = datetime.combine(local.date(), datetime.min.time(), tzinfo=local.tzinfo)
    rows = (
        Usage._default_manager.filter(tier=Tier.OPENAI, created__gte=since, created__lte=now)
        .order_by()
        .values("model")
        .annotate(
            n=Count("pk"),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            estimated=Count("pk", filter=Q(reported=False)),
        )
        .values_list("model", "n", "prompt", "completion", "estimated")
        .order_by("model")
    )
    prices = {p.model: p for p in ModelPrice._default_manager.all()}
    models = []
    for model, n, prompt_sum, completion_sum, estimated in rows:
        prompt, completion = prompt_sum or 0, completion_sum or 0
        price = price_for(model, prices)
        cost = None
        if price is not None:
            cost = (prompt * price.input_per_million + completion * price.output_per_million) / 1_000_000
        models.append(ModelUsage(model, n, prompt, completion, estimated, cost))
    return UsageToday(since, models, *effective_limits(env_requests, env_tokens))


def price_for(model: str, prices: dict[str, ModelPrice]) -> ModelPrice | None:
    """The model's price, or its family's: OpenAI answers with dated names
    ("gpt-4o-mini-2024-07-18") while the table lists "gpt-4o-mini"."""
    if model in prices:
        return prices[model]
    family = [name for name in prices if model.startswith(f"{name}-")]
    return prices[max(family, key=len)] if family else None
