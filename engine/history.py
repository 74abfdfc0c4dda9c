"""Alert history: what fired, who got it, what happened — built from the records alone.

Every view is a pure function of the records the life topics hold (``LifeRecords``), so the
history survives a restart of every process: ``yujing alerts`` (``engine.cli.alerts``) reads
the topics and prints these views.

>>> from topics.records import Alert
>>> fired = Alert(alert_id="a1", model_id="hazchem.tank.level_high", model_version=1,
...               state="firing", severity="red", departments=["fire"], key="T3",
...               sources=["events.hazchem.facility"], first_ts=1717372800,
...               last_ts=1717372830, summary="tank T3 at 96%", emitted_at=1717372831)
>>> print(alert_line(fired))
2024-06-03 08:00:31 +08:00  [RED   ] firing    hazchem.tank.level_high  T3  tank T3 at 96%  (a1)
>>> resolved = fired.model_copy(update={"state": "resolved", "emitted_at": 1717374000.0})
>>> [(v.alert_id, v.state, v.changes) for v in alert_views([fired, resolved, fired])]
[('a1', 'resolved', 2)]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from engine.tracking.report import duration, table_lines
from engine.tracking.scores import DEFAULT_SLA_SECONDS, OrderOutcome, fold_feedback
from engine.tracking.store import LifeRecords, distinct_alert_records
from topics.records import Alert, Feedback, Incident, Severity, WorkOrder
from topics.schemas import CITY_TZ


def record_time(alert: Alert) -> float:
    """When this record was published (wall clock), or its latest evidence's event time for
    records from before the engine stamped ``emitted_at``."""
    return alert.emitted_at if alert.emitted_at is not None else alert.last_ts


def clock(epoch: float, seconds: bool = True) -> str:
    """``2024-06-03 08:00:31 +08:00``: in the city's time zone (``YUJING_TZ``), which every
    command prints its times in, with its offset."""
    moment = datetime.fromtimestamp(epoch, CITY_TZ)
    offset = moment.strftime("%z")
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + \
        f" {offset[:3]}:{offset[3:]}"


# -- the list ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertView:
    """One alert episode as it stands: its latest record, and how many changes it had."""

    latest: Alert
    first_seen: float
    changes: int

    @property
    def alert_id(self) -> str:
        return self.latest.alert_id

    @property
    def state(self) -> str:
        return self.latest.state

    @property
    def changed_at(self) -> float:
        return record_time(self.latest)

    @property
    def open(self) -> bool:
        return self.latest.state != "resolved"


def alert_views(alerts: Iterable[Alert]) -> list[AlertView]:
    """One view per alert episode, duplicates dropped, the most recently changed first.

    Records of one alert arrive in the order they were published (one key, one partition), so
    the last one is the alert's state."""
    latest: dict[str, Alert] = {}
    first_seen: dict[str, float] = {}
    changes: dict[str, int] = {}
    for alert in distinct_alert_records(alerts):
        latest[alert.alert_id] = alert
        first_seen[alert.alert_id] = min(first_seen.get(alert.alert_id, record_time(alert)),
                                         record_time(alert))
        changes[alert.alert_id] = changes.get(alert.alert_id, 0) + 1
    views = [AlertView(latest=a, first_seen=first_seen[i], changes=changes[i])
             for i, a in latest.items()]
    return sorted(views, key=lambda v: v.changed_at, reverse=True)


def select_alerts(views: Iterable[AlertView], *, changed_after: float | None = None,
                  model: str | None = None, key: str | None = None, state: str | None = None,
                  open_only: bool = False) -> list[AlertView]:
    """The views that changed after ``changed_after`` and match every filter given (``model``
    may end in ``*`` for a prefix; ``state`` is the alert's current state)."""

    return [view for view in views
            if (changed_after is None or view.changed_at > changed_after)
            and alert_matches(view.latest, model=model, key=key, state=state)
            and (not open_only or view.open)]


def alert_matches(alert: Alert, *, model: str | None = None, key: str | None = None,
                  state: str | None = None) -> bool:
    """Whether the alert record matches every filter given (``model`` may end in ``*``)."""
    return ((model is None or _matches(model, alert.model_id))
            and (key is None or alert.key == key)
            and (state is None or alert.state == state))


def render_list(views: list[AlertView]) -> str:
    rows = [[clock(v.changed_at), v.latest.severity.value, v.state + _suppression(v.latest),
             v.latest.model_id, v.latest.key, str(v.changes), v.alert_id, v.latest.summary]
            for v in views]
    lines = table_lines(["changed", "severity", "state", "model", "key", "changes", "alert id",
                         "summary"], rows, numeric={5})
    return "\n".join([*lines, f"{len(views)} alerts"])


def alert_line(alert: Alert) -> str:
    """One alert record on one line (``yujing alerts tail``)."""
    return (f"{clock(record_time(alert))}  [{alert.severity.value.upper():6}] "
            f"{alert.state + _suppression(alert):9} {alert.model_id}  {alert.key}  "
            f"{alert.summary}  ({alert.alert_id})")


def _suppression(alert: Alert) -> str:
    if alert.silenced_by:
        return " (silenced)"
    if alert.inhibited_by:
        return " (inhibited)"
    return ""


def _matches(pattern: str, value: str) -> bool:
    return value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern


# -- one alert's story -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderStory:
    order: WorkOrder
    feedback: list[Feedback]
    outcome: OrderOutcome


@dataclass(frozen=True, slots=True)
class AlertStory:
    alert_id: str
    changes: list[Alert]
    """Every state change of the alert, in the order it was published."""
    incidents: list[Incident] = field(default_factory=list)
    orders: list[OrderStory] = field(default_factory=list)


def find_alert_id(records: LifeRecords, wanted: str) -> str | None:
    """``wanted`` itself when any record names it, else the one alert id it begins (so a short
    prefix, as in a list, is enough); None when there is none or more than one."""
    known = {a.alert_id for a in records.alerts.values()}
    known |= {i for o in records.orders.values() for i in o.alert_ids}
    known |= {i for inc in records.incidents.values() for i in inc.alert_ids}
    if wanted in known:
        return wanted
    candidates = [i for i in known if i.startswith(wanted)]
    return candidates[0] if len(candidates) == 1 else None


def alert_story(records: LifeRecords, alert_id: str) -> AlertStory | None:
    """Everything the records say about one alert; None when none of them names it."""
    changes = [a for a in records.alerts.values() if a.alert_id == alert_id]
    incidents = sorted((i for i in records.incidents.values() if alert_id in i.alert_ids),
                       key=lambda i: i.opened_at)
    feedback = records.feedback
    orders = []
    for order in sorted((o for o in records.orders.values() if alert_id in o.alert_ids),
                        key=lambda o: o.created_at):
        about = sorted((f for f in feedback if f.order_id == order.order_id), key=lambda f: f.at)
        orders.append(OrderStory(order, about, fold_feedback(order, about)))
    if not (changes or incidents or orders):
        return None
    return AlertStory(alert_id, changes, incidents, orders)


def render_story(story: AlertStory,
                 sla_seconds: dict[Severity, float] = DEFAULT_SLA_SECONDS) -> str:
    lines = [f"alert {story.alert_id}"]
    if story.changes:
        first = story.changes[0]
        where = ", ".join(part for part in (
            f"grid {first.grid_id}" if first.grid_id else "",
            f"district {first.district}" if first.district else "") if part)
        lines.append(f"  model {first.model_id} v{first.model_version}, key {first.key}, "
                     f"departments {', '.join(first.departments) or '–'}"
                     + (f", {where}" if where else ""))
    lines += ["", "What fired"]
    if not story.changes:
        lines.append("  (no alert records left on the topic)")
    for alert in story.changes:
        lines.append(f"  {clock(record_time(alert))}  {alert.state:9} {alert.severity.value:6} "
                     f"{alert.summary}" + _why_not_dispatched(alert)
                     + (f" (reopened {alert.reopened}×)" if alert.reopened else ""))
    for incident in story.incidents:
        lines += ["", f"Incident {incident.incident_id} ({incident.place}, {incident.state}, "
                  f"{incident.severity.value}): opened {clock(incident.opened_at)}, "
                  f"{len(incident.alert_ids)} alerts of {', '.join(incident.model_ids)}"]
    lines += ["", "Who got it"]
    if not story.orders:
        lines.append("  no work order names this alert")
    for item in story.orders:
        order = item.order
        lines.append(f"  order {order.order_id} → {order.department} ({order.level} level), "
                     f"{order.severity.value}, created {clock(order.created_at)}, "
                     f"acknowledge by {clock(order.ack_due)}, now {order.state}"
                     + (f", escalated {order.escalations}×" if order.escalations else ""))
        if len(order.levels) > 1:
            lines.append("    held by: " + " → ".join(
                f"{hold.level}{f' {hold.place}' if hold.place else ''} from {clock(hold.since)}"
                for hold in order.levels))
        for event in order.history:
            lines.append(f"    {clock(event.at)}  {event.what}" + _by_note(event.by, event.note))
        for fb in item.feedback:
            lines.append(f"    {clock(fb.at)}  feedback: {fb.status} from {fb.department}"
                         + _by_note(fb.by, fb.note))
    if story.orders:
        lines += ["", "What happened"]
        lines += [f"  {item.order.order_id}: {_outcome(item.outcome, sla_seconds)}"
                  for item in story.orders]
    return "\n".join(lines)


def _why_not_dispatched(alert: Alert) -> str:
    if alert.silenced_by:
        return f"  [silenced by {', '.join(alert.silenced_by)}: not dispatched]"
    if alert.inhibited_by:
        return f"  [inhibited by {alert.inhibited_by}: not dispatched]"
    return ""


def _by_note(by: str | None, note: str | None) -> str:
    return (f" by {by}" if by else "") + (f": {note}" if note else "")


def _outcome(outcome: OrderOutcome, sla_seconds: dict[Severity, float]) -> str:
    severity = outcome.order.severity
    limit = duration(sla_seconds[severity])
    parts = [{"resolved": "resolved", "false_alarm": "false alarm"}.get(
        outcome.verdict or "", "still open")]
    if outcome.ack_seconds is None:
        parts.append(f"not acknowledged (the {severity.value} limit is {limit})")
    else:
        met = outcome.ack_seconds <= sla_seconds[severity]
        parts.append(f"acknowledged after {duration(outcome.ack_seconds)} "
                     f"({'within' if met else 'over'} the {severity.value} limit of {limit})")
    if outcome.resolve_seconds is not None:
        parts.append(f"resolved after {duration(outcome.resolve_seconds)}")
    return "; ".join(parts)
