"""Which events alert, and the alerts they queue: small steps the loop and the tests call.

`watch_adapters(now)` records adapters' failing spells; `find_events(now)` reads the
history (incidents, budget absences) and those spells, and says what deserves an
alert under the rules; `queue(events, now)` creates one `Alert` per event and target.
Each event has a key of its own ("incident:42:down"), unique per target in the
database: however often and from however many processes these run, an event is
queued once per target.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from chatbridge.models import AdapterState, Platform
from llm.alerts.models import AdapterOutage, Alert, AlertRules, AlertTarget
from llm.models import Absence, Incident, Scope, Tier
from serdabot.redact import redact

# Events older than this are history, not news: a fresh install (or alerts switched on
# after months) never sends a flood about the past.
LOOKBACK = timedelta(hours=24)

State = AdapterState.State


@dataclass(frozen=True)
class Event:
    event: str  # an Alert.Event
    key: str
    about: str  # the tier or the platform
    subject: str
    body: str
    # When the event's period ended: a target added after that never hears of it.
    ended: datetime | None = None
    # The key of the alert a target must have had first: a back-up only follows its down alert.
    after: str = ""


def current_rules() -> AlertRules:
    """The saved rules, or the defaults until the admin saves them."""
    return AlertRules.objects.order_by("pk").first() or AlertRules()


def is_failing(state: AdapterState) -> bool:
    """What the supervisor writes when an adapter fails: `reconnecting` with the error, then
    `starting` for the retry (the error kept), or `failed` when it gave up. A first
    `starting` has no error: that is a start, not a failure."""
    if state.state in (State.RECONNECTING, State.FAILED):
        return True
    return state.state == State.STARTING and bool(state.last_error)


def watch_adapters(now: datetime) -> None:
    """Open a failing spell for each adapter seen failing, close it when it is connected again."""
    for state in AdapterState.objects.filter(updated__gte=now - LOOKBACK):
        if is_failing(state):
            # The state row's last write is the nearest record of when the failure began.
            outage, created = AdapterOutage.objects.get_or_create(
                platform=state.platform,
                ended=None,
                defaults={"started": min(state.updated, now), "error": state.last_error},
            )
            if not created and state.last_error and outage.error != state.last_error:
                AdapterOutage.objects.filter(pk=outage.pk).update(error=state.last_error)
        elif state.state == State.CONNECTED:
            AdapterOutage.objects.filter(platform=state.platform, ended=None).update(ended=now)


def find_events(now: datetime, rules: AlertRules | None = None) -> list[Event]:
    rules = rules or current_rules()
    delay = timedelta(seconds=rules.down_after)
    # Still going on, or over within the look-back.
    recent = Q(ended__isnull=True) | Q(ended__gte=now - LOOKBACK)
    events: list[Event] = []
    if rules.on_down:
        for incident in Incident.objects.filter(recent, scope=Scope.BOT, started__lte=now - delay):
            if (incident.ended or now) - incident.started >= delay:  # a blip shorter than that is not news
                events += incident_events(incident, back_up=rules.on_back_up and answered_again(incident))
    if rules.on_budget:
        for absence in Absence.objects.filter(recent, scope=Scope.BOT, kind=Absence.Kind.BUDGET):
            events.append(budget_event(absence))
    if rules.on_adapter:
        for outage in AdapterOutage.objects.filter(recent, started__lte=now - delay):
            if (outage.ended or now) - outage.started >= delay:
                events += adapter_events(outage)
    return events


def answered_again(incident: Incident) -> bool:
    """Whether the incident ended because the tier answered: not a pause, a switch-off or a stop,
    which end it too (that time is no downtime) while the tier may still be down."""
    if incident.ended is None:
        return False
    return not Absence.objects.filter(
        tier=incident.tier, scope=incident.scope, started=incident.ended
    ).exists()


def identity(period: Incident | Absence) -> str:
    """What a period is, not its row: `rebuildrollups` recreates the rows, and must not re-alert."""
    return f"{period.tier}:{period.scope}:{period.started.timestamp():.6f}"


def incident_events(incident: Incident, *, back_up: bool) -> list[Event]:
    tier = tier_label(incident.tier)
    cause = redact(": ".join(part for part in (incident.cause, incident.detail) if part))
    down_key = f"incident:{identity(incident)}:down"
    down = Event(
        event=Alert.Event.DOWN,
        key=down_key,
        about=incident.tier,
        subject=_("%(tier)s is down") % {"tier": tier},
        body=_("Down since %(when)s.") % {"when": when(incident.started)}
        + (f" {cause}" if cause else "")
        + " "
        + _("Chat gets the next tier or fallback phrases meanwhile."),
        ended=incident.ended,
    )
    if incident.ended is None or not back_up:
        return [down]
    up = Event(
        event=Alert.Event.UP,
        key=f"incident:{identity(incident)}:up",
        about=incident.tier,
        subject=_("%(tier)s is back up") % {"tier": tier},
        body=_("Down from %(start)s to %(end)s (%(length)s).") % span(incident.started, incident.ended),
        ended=incident.ended,
        after=down_key,
    )
    return [down, up]


def span(start: datetime, end: datetime) -> dict[str, str]:
    """An episode's start, end and length, for the messages that report one over."""
    return {"start": when(start), "end": when(end), "length": duration(end - start)}


def budget_event(absence: Absence) -> Event:
    return Event(
        event=Alert.Event.BUDGET,
        key=f"budget:{identity(absence)}",
        about=absence.tier,
        subject=_("%(tier)s daily budget reached") % {"tier": tier_label(absence.tier)},
        body=_(
            "Since %(when)s the tier is skipped until local midnight; chat gets the other tiers meanwhile."
        )
        % {"when": when(absence.started)},
        ended=absence.ended,
    )


def adapter_events(outage: AdapterOutage) -> list[Event]:
    platform = platform_label(outage.platform)
    since = outage.started.isoformat()
    failing_key = f"adapter:{outage.platform}:failing:{since}"
    error = redact(outage.error)
    failing = Event(
        event=Alert.Event.ADAPTER_FAILING,
        key=failing_key,
        about=outage.platform,
        subject=_("%(platform)s adapter failing") % {"platform": platform},
        body=_("Failing since %(when)s.") % {"when": when(outage.started)} + (f" {error}" if error else ""),
        ended=outage.ended,
    )
    if outage.ended is None:
        return [failing]
    back = Event(
        event=Alert.Event.ADAPTER_BACK,
        key=f"adapter:{outage.platform}:back:{since}",
        about=outage.platform,
        subject=_("%(platform)s adapter connected again") % {"platform": platform},
        body=_("Failing from %(start)s to %(end)s (%(length)s).") % span(outage.started, outage.ended),
        ended=outage.ended,
        after=failing_key,
    )
    return [failing, back]


def queue(events: Iterable[Event], now: datetime) -> int:
    """Create the alerts not created yet, for every enabled target; returns how many."""
    events = list(events)
    targets = list(AlertTarget.objects.filter(enabled=True))
    if not events or not targets:
        return 0
    keys = {e.key for e in events} | {e.after for e in events if e.after}
    have = set(Alert.objects.filter(key__in=keys, target__in=targets).values_list("target_id", "key"))
    rows: list[Alert] = []
    for event in events:
        for target in targets:
            if (target.pk, event.key) in have:
                continue
            if event.ended is not None and target.created > event.ended:
                continue  # over before this target existed: history, not news
            if event.after and (target.pk, event.after) not in have:
                continue
            have.add((target.pk, event.key))  # a back-up queued with its down in one pass
            rows.append(
                Alert(
                    created=now,
                    target=target,
                    event=event.event,
                    key=event.key,
                    about=event.about,
                    subject=event.subject[:200],
                    body=event.body,
                    next_try=now,
                )
            )
    # Another process may queue the same rows at the same moment: the unique (target, key)
    # keeps one of each and the other insert is ignored.
    Alert.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def tier_label(tier: str) -> str:
    return str(Tier(tier).label) if tier in Tier.values else tier


def platform_label(platform: str) -> str:
    return str(Platform(platform).label) if platform in Platform.values else platform


def when(moment: datetime) -> str:
    local = timezone.localtime(moment)
    return f"{local:%Y-%m-%d %H:%M:%S} ({local.tzname()})"


def duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {seconds} s"
    return f"{seconds} s"
