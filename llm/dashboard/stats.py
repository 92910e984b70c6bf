"""What the dashboard shows, computed in the database.

Every function here returns small, already aggregated results: probes and calls are
counted, bucketed and ranked by SQL, never looped over in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, F, OuterRef, Q, Subquery, Sum, Window
from django.db.models.expressions import BaseExpression
from django.db.models.functions import RowNumber
from django.utils import timezone

from llm.dashboard import bucketcache
from llm.dashboard.buckets import Buckets, EpochBucket
from llm.models import BudgetSettings, CascadeCall, ModelPrice, Probe, Source, Tier, TierEvent, Usage
from serdabot.redact import redact

# Breaker states that mean "this tier is not answering": an incident lasts while the
# tier stays in one of them, so down -> cooling -> down is a single incident.
# Warming counts: chat cannot use the tier while its model loads (or hangs).
BAD_STATES = (TierEvent.State.DOWN, TierEvent.State.COOLING, TierEvent.State.WARMING)
UPTIME_SPANS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


@dataclass(frozen=True, slots=True)
class Ratio:
    ok: int
    total: int

    @property
    def percent(self) -> float | None:
        return 100.0 * self.ok / self.total if self.total else None


@dataclass(frozen=True, slots=True)
class CurrentState:
    state: str  # a TierEvent.State value, or "unknown" when nothing was ever recorded
    since: datetime | None
    error: str = ""
    detail: str = ""

    @property
    def label(self) -> str:
        if self.state == "unknown":
            return "No data yet"
        return str(TierEvent.State(self.state).label)


@dataclass(frozen=True, slots=True)
class LatencyPoint:
    start: datetime
    p50: float
    p95: float
    count: int


@dataclass(frozen=True, slots=True)
class Incident:
    tier: str
    start: datetime
    end: datetime | None  # None: still ongoing
    error: str
    detail: str

    @property
    def ongoing(self) -> bool:
        return self.end is None

    def duration(self, now: datetime) -> timedelta:
        return (self.end or now) - self.start

    def overlap(self, start: datetime, end: datetime, now: datetime) -> timedelta:
        """How much of [start, end) this incident covers (downtime within a window)."""
        lo, hi = max(self.start, start), min(self.end or now, end)
        return max(hi - lo, timedelta(0))


@dataclass(frozen=True, slots=True)
class MonthSummary:
    month: datetime  # first instant of the month, in the current time zone
    incidents: int
    downtime: timedelta


@dataclass(slots=True)
class Replies:
    buckets: Buckets
    # bucket number -> source -> replies
    counts: dict[int, dict[str, int]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    @property
    def fallback_share(self) -> float | None:
        return 100.0 * self.totals.get(Source.FALLBACK, 0) / self.total if self.total else None


def uptime(now: datetime) -> dict[str, dict[str, Ratio]]:
    """Share of successful probes per tier over the last 24 h, 7 d and 30 d.

    One small query per span: on SQLite three plain counts over an index are about
    twice as fast as one scan with six conditional counts.
    """
    result = {tier: {key: Ratio(0, 0) for key in UPTIME_SPANS} for tier in Tier.values}
    for key, span in UPTIME_SPANS.items():
        rows = (
            # Naming the tiers lets SQLite search the covering (tier, created, ok) index.
            Probe._default_manager.filter(tier__in=Tier.values, created__gte=now - span, created__lte=now)
            .order_by()
            .values("tier")
            .annotate(n=Count("*"), up=Count("pk", filter=Q(ok=True)))
            .values_list("tier", "n", "up")
        )
        for tier, n, up in rows:
            result.setdefault(tier, {k: Ratio(0, 0) for k in UPTIME_SPANS})[key] = Ratio(up, n)
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


def latency(buckets: Buckets, now: datetime) -> dict[str, list[LatencyPoint]]:
    """p50 and p95 probe latency per tier and bucket (nearest-rank percentiles)."""
    found = bucketcache.by_bucket("latency", buckets, now, _latency_between)
    result: dict[str, list[LatencyPoint]] = {tier: [] for tier in Tier.values}
    for number, per_tier in sorted(found.items()):
        for tier, (p50, p95, size) in per_tier.items():
            result.setdefault(tier, []).append(LatencyPoint(buckets.start_of(number), p50, p95, size))
    return result


def _latency_between(
    seconds: int, start: datetime, end: datetime
) -> dict[int, dict[str, tuple[float, float, int]]]:
    """bucket -> tier -> (p50, p95, probes), from the probes in [start, end).

    The rank of each probe within its bucket comes from a window function, and only the
    rows sitting at the 50th and 95th ranks come back from the database.
    """
    bucket = EpochBucket("created", seconds)
    partition: list[BaseExpression | F] = [F("tier"), bucket]
    rows = (
        Probe._default_manager.filter(
            tier__in=Tier.values, created__gte=start, created__lt=end, ok=True, latency_ms__isnull=False
        )
        .order_by()
        .annotate(
            bucket=bucket,
            rank=Window(RowNumber(), partition_by=partition, order_by=[F("latency_ms").asc()]),
            size=Window(Count("pk"), partition_by=partition),
        )
        # Nearest rank: ceil(p * n), written in integer arithmetic both backends share.
        .filter(Q(rank=(F("size") + 1) / 2) | Q(rank=(F("size") * 95 + 99) / 100))
        .values_list("tier", "bucket", "rank", "size", "latency_ms")
    )
    picked: dict[int, dict[str, dict[str, float]]] = {}
    for tier, number, rank, size, value in rows:
        if value is None:  # excluded by the filter; the check narrows the type
            continue
        point = picked.setdefault(number, {}).setdefault(tier, {"size": size})
        if rank == (size + 1) // 2:
            point["p50"] = value
        if rank == (size * 95 + 99) // 100:
            point["p95"] = value
    return {
        number: {tier: (p["p50"], p["p95"], int(p["size"])) for tier, p in tiers.items()}
        for number, tiers in picked.items()
    }


def replies(buckets: Buckets, now: datetime) -> Replies:
    """Replies per source and bucket for the chart, and exact totals over the window."""
    result = Replies(buckets)
    result.counts = bucketcache.by_bucket("replies", buckets, now, _replies_between)
    totals = (
        CascadeCall._default_manager.filter(created__gte=buckets.start, created__lt=buckets.end)
        .order_by()
        .values("source")
        .annotate(n=Count("pk"))
        .values_list("source", "n")
    )
    result.totals = dict(totals)
    return result


def _replies_between(seconds: int, start: datetime, end: datetime) -> dict[int, dict[str, int]]:
    rows = (
        CascadeCall._default_manager.filter(created__gte=start, created__lt=end)
        .order_by()
        .annotate(bucket=EpochBucket("created", seconds))
        .values("bucket", "source")
        .annotate(n=Count("pk"))
        .values_list("bucket", "source", "n")
    )
    counts: dict[int, dict[str, int]] = {}
    for number, source, n in rows:
        counts.setdefault(number, {})[source] = n
    return counts


def incidents(start: datetime, end: datetime) -> list[Incident]:
    """Incidents overlapping [start, end), newest first, the ongoing ones included.

    An incident starts at a bad state whose previous event (same tier) was not bad, and
    ends at the next event that is not bad. Both are correlated subqueries on the
    (tier, created) index, so events before the window are taken into account.
    """
    same_tier = TierEvent._default_manager.filter(tier=OuterRef("tier")).order_by()
    earlier = Q(created__lt=OuterRef("created")) | Q(created=OuterRef("created"), pk__lt=OuterRef("pk"))
    later = Q(created__gt=OuterRef("created")) | Q(created=OuterRef("created"), pk__gt=OuterRef("pk"))
    previous_state = same_tier.filter(earlier).order_by("-created", "-pk").values("state")[:1]
    recovered = (
        same_tier.filter(later).exclude(state__in=BAD_STATES).order_by("created", "pk").values("created")[:1]
    )
    rows = (
        TierEvent._default_manager.filter(state__in=BAD_STATES, created__lt=end)
        .annotate(previous=Subquery(previous_state), ended=Subquery(recovered))
        .filter(Q(previous__isnull=True) | ~Q(previous__in=BAD_STATES))
        .filter(Q(ended__isnull=True) | Q(ended__gt=start))
        .order_by("-created", "-pk")
        .values_list("tier", "created", "ended", "error", "detail")
    )
    return [
        # Redacted when read too: rows stored before redaction existed may hold a key.
        Incident(tier, started, _aware(ended), redact(error), redact(detail))
        for tier, started, ended, error, detail in rows
    ]


def _aware(value: datetime | str | None) -> datetime | None:
    # A Subquery annotation of a DateTimeField comes back parsed on both backends;
    # this keeps the type honest if a backend ever hands back text.
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(value)
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


def month_starts(now: datetime, months: int) -> list[datetime]:
    """The first instant of this month and the `months - 1` before it, newest first."""
    local = timezone.localtime(now)
    first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    result = [first]
    for _ in range(months - 1):
        first = (first - timedelta(days=1)).replace(day=1)
        result.append(first)
    return result


def monthly_summary(now: datetime, months: int = 3) -> list[MonthSummary]:
    """Incidents and downtime per calendar month, counting each incident in the months it touches."""
    starts = month_starts(now, months)
    found = incidents(starts[-1], now)
    summaries = []
    month_end = now
    for month_start in starts:
        touching = [i for i in found if i.overlap(month_start, month_end, now) > timedelta(0)]
        downtime = sum((i.overlap(month_start, month_end, now) for i in touching), timedelta(0))
        summaries.append(MonthSummary(month_start, len(touching), downtime))
        month_end = month_start
    return summaries


def current_state(tier: str) -> CurrentState:
    """The tier's state and since when: its latest state change, else its latest probe."""
    events = TierEvent._default_manager.filter(tier=tier).order_by("-created", "-pk")
    latest = events.first()
    if latest is not None:
        changed = events.exclude(state=latest.state).first()
        run = TierEvent._default_manager.filter(tier=tier, state=latest.state)
        if changed is not None:
            run = run.filter(created__gte=changed.created).exclude(pk=changed.pk)
        first = run.order_by("created", "pk").first() or latest
        return CurrentState(latest.state, first.created, redact(latest.error), redact(latest.detail))
    probes = Probe._default_manager.filter(tier=tier).order_by("-created", "-pk")
    last = probes.first()
    if last is None:
        return CurrentState("unknown", None)
    flipped = probes.exclude(ok=last.ok).values_list("created", flat=True).first()
    same = Probe._default_manager.filter(tier=tier, ok=last.ok)
    if flipped is not None:
        same = same.filter(created__gt=flipped)
    since = same.order_by("created").values_list("created", flat=True).first()
    state = TierEvent.State.UP if last.ok else TierEvent.State.DOWN
    return CurrentState(state, since, redact(last.error), redact(last.detail))


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
