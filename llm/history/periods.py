"""Incidents and absences as rows, opened and closed by the history writer from state changes.

Each tier's state changes (TierEvent, one stream per tier: see llm.cascade.shared) are
sorted into three kinds of time, per scope (the bot's processes, or console runs):
- up: the tier answers;
- an incident (downtime): the tier had been up since it was configured, then failed
  (down, cooling after a 429, or warming a model that chat must skip);
- an absence (not expected to answer): never found since it was configured, disabled,
  not configured (no OpenAI key), paused, or over its daily budget.
Consecutive states of one kind are one period: down -> cooling -> down is one incident.
`TierStatus` remembers each tier's state, so the writer decides in one indexed lookup
and the page reads the current state in one row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from llm.history.scopes import scope_of
from llm.models import Absence, Incident, TierEvent, TierStatus

State = TierEvent.State
BAD_STATES = frozenset({State.DOWN.value, State.COOLING.value, State.WARMING.value})
ABSENT_KINDS = {
    State.DISABLED.value: Absence.Kind.DISABLED.value,
    State.NOT_CONFIGURED.value: Absence.Kind.NOT_CONFIGURED.value,
    State.PAUSED.value: Absence.Kind.PAUSED.value,
    State.BUDGET.value: Absence.Kind.BUDGET.value,
    State.STOPPED.value: Absence.Kind.OFFLINE.value,
}
# Configured anew, or the bot restarted: a failure after these is "never found" until the
# tier answers once (a model still loading at the next start is not an outage).
RESETS = frozenset({State.DISABLED.value, State.NOT_CONFIGURED.value, State.STOPPED.value})

Kind = tuple[str, str]  # ("incident" | "absence" | "up", absence kind)


def kind_of(state: str, up_seen: bool) -> Kind:
    if state in BAD_STATES:
        return ("incident", "") if up_seen else ("absence", Absence.Kind.NEVER_FOUND.value)
    if state in ABSENT_KINDS:
        return "absence", ABSENT_KINDS[state]
    return "up", ""


@dataclass(slots=True)
class Step:
    """What one state change does: the tier's new status, and whether a period ends and another begins."""

    status: TierStatus
    turned: bool  # the kind of time changed: close the open period, open `kind`'s
    kind: Kind


def advance(status: TierStatus | None, event: TierEvent, scope: str) -> Step | None:
    """The pure rule, shared by the writer and the rebuild. None: a stale change, ignored."""
    if status is None:
        status = TierStatus(tier=event.tier, scope=scope, first_seen=event.created, since=event.created)
        before: Kind = ("none", "")
    elif event.created < status.changed:
        # An older change that reached the database late (its writer waited out an outage):
        # its row is kept, but periods follow the newest state.
        return None
    else:
        before = kind_of(status.state, status.up_seen)
    if event.state == State.UP:
        up_seen = True
    elif event.state in RESETS:
        up_seen = False
    else:
        up_seen = status.up_seen
    after = kind_of(event.state, up_seen)
    if before[0] != "none" and status.state != event.state:
        status.since = event.created
    status.state = event.state
    status.error = event.error
    status.detail = event.detail
    status.up_seen = up_seen
    status.changed = event.created
    return Step(status, after != before, after)


def period_for(event: TierEvent, scope: str, kind: Kind) -> Incident | Absence | None:
    common = {
        "tier": event.tier,
        "scope": scope,
        "started": event.created,
        "state": event.state,
        "cause": event.error,
        "detail": event.detail,
        "host": event.host,
        "pid": event.pid,
        "role": event.role,
    }
    if kind[0] == "incident":
        return Incident(**common)
    if kind[0] == "absence":
        return Absence(kind=kind[1], **common)
    return None


def apply(events: Iterable[TierEvent]) -> None:
    """Open and close periods for these saved state changes (call inside the writer's transaction)."""
    for event in sorted(events, key=lambda e: (e.created, e.pk or 0)):
        scope = scope_of(event.role)
        status = TierStatus._default_manager.select_for_update().filter(tier=event.tier, scope=scope).first()
        step = advance(status, event, scope)
        if step is None:
            continue
        if step.turned:
            close_open(event.tier, scope, event.created)
            period = period_for(event, scope, step.kind)
            if period is not None:
                period.save()
        step.status.save()


def close_open(tier: str, scope: str, at: datetime) -> None:
    """End the tier's open period(s) at `at` (one, unless two processes raced on an older version)."""
    for model in (Incident, Absence):
        for period in model._default_manager.filter(tier=tier, scope=scope, ended__isnull=True):
            end(period, at)
            period.save(update_fields=["ended", "seconds"])


def end(period: Incident | Absence, at: datetime) -> None:
    period.ended = max(at, period.started)
    period.seconds = (period.ended - period.started).total_seconds()


def rebuild() -> dict[str, int]:
    """Recompute incidents, absences and statuses from the state changes still kept.

    For history written before periods existed, or to repair them. Each tier (and scope)
    is redone from its own oldest state change kept: retention prunes changes sooner than
    periods, and what came before stays as it was. A period still open at that change
    (an outage older than the changes kept) is carried on, not cut in two. Worked out in
    memory and written in one transaction.

    Unlike the writer, a change that arrived late is placed in time order here.
    """
    events = list(TierEvent._default_manager.order_by("created", "pk"))
    if not events:
        return {"events": 0, "incidents": 0, "absences": 0}
    firsts: dict[tuple[str, str], datetime] = {}
    for event in events:
        firsts.setdefault((event.tier, scope_of(event.role)), event.created)
    existing = {(s.tier, s.scope): s for s in TierStatus._default_manager.all()}
    statuses: dict[tuple[str, str], TierStatus] = {}
    open_: dict[tuple[str, str], Incident | Absence] = {}
    carried: list[Incident | Absence] = []
    for key, first in firsts.items():
        seeded = _seed(key, first, existing.get(key))
        if seeded is not None:
            statuses[key], period = seeded
            if period is not None:
                open_[key] = period
                carried.append(period)
    periods: list[Incident | Absence] = []
    for event in events:
        key = (event.tier, scope_of(event.role))
        step = advance(statuses.get(key), event, key[1])
        if step is None:
            continue
        statuses[key] = step.status
        if step.turned:
            if (ended := open_.pop(key, None)) is not None:
                end(ended, event.created)
            if (period := period_for(event, key[1], step.kind)) is not None:
                open_[key] = period
                periods.append(period)
    incidents = [p for p in periods if isinstance(p, Incident)]
    absences = [p for p in periods if isinstance(p, Absence)]
    with transaction.atomic():
        for (tier, scope), first in firsts.items():
            for model in (Incident, Absence):
                model._default_manager.filter(tier=tier, scope=scope, started__gte=first).delete()
        for period in carried:
            period.save(update_fields=["ended", "seconds"])
        TierStatus._default_manager.all().delete()
        Incident._default_manager.bulk_create(incidents, batch_size=2000)
        Absence._default_manager.bulk_create(absences, batch_size=2000)
        # Tiers with no state change kept keep the status they had.
        kept = [s for key, s in existing.items() if key not in statuses]
        for status in kept:
            status.pk = None
        TierStatus._default_manager.bulk_create([*statuses.values(), *kept])
    return {
        "events": len(events),
        "incidents": len(incidents),
        "absences": len(absences),
    }


def _up_seen_during(period: Incident | Absence, first: datetime) -> bool:
    """Whether the tier had answered since it was configured, while `period` went on."""
    if isinstance(period, Incident):
        return True
    if period.kind in (Absence.Kind.PAUSED, Absence.Kind.BUDGET):
        # A pause or the budget keeps what came before: was the period before it downtime or up?
        earlier = [
            p
            for model in (Incident, Absence)
            if (
                p := model._default_manager.filter(
                    tier=period.tier, scope=period.scope, started__lt=period.started
                )
                .order_by("-started")
                .first()
            )
            is not None
        ]
        if not earlier:
            return False
        latest = max(earlier, key=lambda p: p.started)
        ended_before = latest.ended is not None and latest.ended < period.started
        return ended_before or _up_seen_during(latest, first)
    return False  # never found, disabled, not configured, offline: not since then


def _seed(
    key: tuple[str, str], first: datetime, status: TierStatus | None
) -> tuple[TierStatus, Incident | Absence | None] | None:
    """The tier's state just before its oldest change kept, from the periods before it.

    None: nothing is known before it (a fresh rebuild). Otherwise a status to start from,
    and the period still open at `first`, if any, to carry on.
    """
    tier, scope = key
    before: list[Incident | Absence] = []
    for model in (Incident, Absence):
        found = model._default_manager.filter(tier=tier, scope=scope, started__lt=first).order_by("-started")
        latest = found.first()
        if latest is not None:
            before.append(latest)
    if not before:
        if status is None or status.first_seen >= first:
            return None
        # No period before, but a state: the tier was up (only "up" has no period) since then.
        seeded = TierStatus(
            tier=tier,
            scope=scope,
            state=State.UP.value,
            since=status.first_seen,
            up_seen=True,
            first_seen=status.first_seen,
            changed=status.first_seen,
        )
        return seeded, None
    prior = max(before, key=lambda p: p.started)
    first_seen = min(status.first_seen, prior.started) if status is not None else prior.started
    if prior.ended is None or prior.ended >= first:
        # Still open when the kept changes begin (or ended by the first of them): carried on, its
        # end worked out again.
        prior.ended = prior.seconds = None
        up_seen = _up_seen_during(prior, first)
        state, since = prior.state, prior.started
    else:
        # Only "up" has no period: a tier whose latest period had ended was up, so it had answered.
        up_seen, state, since = True, State.UP.value, prior.ended
    seeded = TierStatus(
        tier=tier,
        scope=scope,
        state=state,
        since=since,
        up_seen=up_seen,
        first_seen=first_seen,
        changed=since,
    )
    return seeded, (prior if prior.ended is None else None)
