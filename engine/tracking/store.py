"""What the topics of an alert's life hold, as typed records in memory.

Tracking, the report and the alert history all start from the same four topics — ``alerts``,
``incidents``, ``dispatch.orders`` and ``dispatch.feedback`` — which other processes write. A
``LifeRecords`` takes their records one at a time (bytes as they come from Kafka, or lines of a
file) and keeps what the topics mean: every alert state change once, the latest record of each
incident and work order (the compacted topics' semantics: a later record supersedes, a tombstone
deletes) and every feedback once. A record that does not parse is refused with the reason, never
raised: these are someone else's output.

>>> records = LifeRecords()
>>> records.add("dispatch.feedback", b"O1", b'{"order_id": "O1", "status": "acknowledged",'
...             b' "department": "fire", "at": 60}')
>>> records.add("dispatch.feedback", b"O1", b'{"order_id": "O1"')
'dispatch.feedback: not JSON: unexpected end of data: line 1 column 18 (char 17)'
>>> [f.status for f in records.feedback], dict(records.skipped)
(['acknowledged'], {'dispatch.feedback': 1})
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import orjson
from pydantic import ValidationError

from topics.records import Alert, Feedback, Incident, WorkOrder
from topics.registry import ALERTS, FEEDBACK, INCIDENTS, ORDERS

TRACKED_TOPICS = (ALERTS.name, ORDERS.name, FEEDBACK.name)
"""What performance tracking reads."""
HISTORY_TOPICS = (ALERTS.name, INCIDENTS.name, ORDERS.name, FEEDBACK.name)
"""What the alert history reads."""

AlertRecordKey = tuple[str, str, int, str]
FeedbackKey = tuple[str, str, str, float, str | None]


def alert_record_key(alert: Alert) -> AlertRecordKey:
    """What makes an alert record a new state change rather than a redelivered copy.

    (alert_id, state) as the README says, refined by ``reopened`` and ``severity``: an alert
    that fires again within its cooldown keeps its id and state but counts one more reopening,
    and a second escalation keeps the state but raises the severity; both are real changes,
    while a redelivered copy repeats all four.
    """
    return alert.alert_id, alert.state, alert.reopened, alert.severity.value


def distinct_alert_records(alerts: Iterable[Alert]) -> Iterator[Alert]:
    """The alert records in order, each state change once (redelivered copies dropped)."""
    seen: set[AlertRecordKey] = set()
    for alert in alerts:
        record_key = alert_record_key(alert)
        if record_key not in seen:
            seen.add(record_key)
            yield alert


def alert_time(alert: Alert) -> float:
    """When an alert record happened on the wall clock: ``emitted_at``, or the event time of
    the episode's start for records from before the engine stamped ``emitted_at``. Work orders
    and feedback are on the wall clock too, so one period selects all three alike."""
    return alert.emitted_at if alert.emitted_at is not None else alert.first_ts


def order_time(order: WorkOrder) -> float:
    return order.created_at


@dataclass
class LifeRecords:
    """The records of the life topics, kept as the topics mean them (see the module doc)."""

    alerts: dict[AlertRecordKey, Alert] = field(default_factory=dict)
    """Every alert state change once, in arrival order (records of one alert share a partition,
    so arrival order is the order they were published in)."""
    orders: dict[str, WorkOrder] = field(default_factory=dict)
    incidents: dict[str, Incident] = field(default_factory=dict)
    feedback_seen: dict[FeedbackKey, Feedback] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    """Records refused, by topic."""
    taken: Counter[str] = field(default_factory=Counter)
    """Records used, by topic (duplicates included)."""
    alerts_after: float | None = None
    """Alerts whose episode first appeared at or before this are not kept (bounds a long-running
    reader's memory: ``alerts`` keeps every state change for the topic's retention)."""
    _forgotten_alerts: set[str] = field(default_factory=set)

    @property
    def feedback(self) -> list[Feedback]:
        return list(self.feedback_seen.values())

    def add(self, topic: str, key: bytes | None, value: bytes | None) -> str | None:
        """Take one record of ``topic``; return why it was refused (None when it was used)."""
        problem = self._add(topic, key, value)
        if problem is None:
            self.taken[topic] += 1
        else:
            self.skipped[topic] += 1
        return problem

    def add_alert(self, alert: Alert) -> None:
        if alert.alert_id in self._forgotten_alerts:
            return
        if self.alerts_after is not None and alert_time(alert) <= self.alerts_after:
            self._forgotten_alerts.add(alert.alert_id)
            return
        self.alerts.setdefault(alert_record_key(alert), alert)

    def add_order(self, order: WorkOrder) -> None:
        # Re-inserted, so dict order stays "latest change last".
        self.orders.pop(order.order_id, None)
        self.orders[order.order_id] = order

    def add_feedback(self, feedback: Feedback) -> None:
        key = (feedback.order_id, feedback.status, feedback.department, feedback.at, feedback.by)
        self.feedback_seen.setdefault(key, feedback)

    def add_incident(self, incident: Incident) -> None:
        self.incidents.pop(incident.incident_id, None)
        self.incidents[incident.incident_id] = incident

    def forget_alerts_before(self, cutoff: float) -> int:
        """Drop the alerts whose episode first appeared at or before ``cutoff`` (outside a
        period that starts there) and ignore their later records; return how many records were
        dropped."""
        self.alerts_after = cutoff
        first_seen: dict[str, float] = {}
        for alert in self.alerts.values():
            seen = first_seen.get(alert.alert_id)
            first_seen[alert.alert_id] = alert_time(alert) if seen is None else min(
                seen, alert_time(alert))
        old = {alert_id for alert_id, t in first_seen.items() if t <= cutoff}
        if not old:
            return 0
        self._forgotten_alerts |= old
        before = len(self.alerts)
        self.alerts = {k: a for k, a in self.alerts.items() if a.alert_id not in old}
        return before - len(self.alerts)

    def _add(self, topic: str, key: bytes | None, value: bytes | None) -> str | None:
        if value is None or value == b"":
            return self._tombstone(topic, key)
        record = parse_record(topic, value)
        if isinstance(record, str):
            return record
        self.add_record(record)
        return None

    def add_record(self, record: Alert | WorkOrder | Feedback | Incident) -> None:
        """Take one record already parsed (``parse_record``)."""
        if isinstance(record, Alert):
            self.add_alert(record)
        elif isinstance(record, WorkOrder):
            self.add_order(record)
        elif isinstance(record, Feedback):
            self.add_feedback(record)
        elif isinstance(record, Incident):
            self.add_incident(record)

    def _tombstone(self, topic: str, key: bytes | None) -> str | None:
        name = key.decode("utf-8", errors="replace") if key else None
        if topic == ORDERS.name and name is not None:
            self.orders.pop(name, None)
            return None
        if topic == INCIDENTS.name and name is not None:
            self.incidents.pop(name, None)
            return None
        return f"{topic}: empty record (key {name!r})"


def parse_record(topic: str, value: bytes) -> Alert | WorkOrder | Feedback | Incident | str:
    """The typed record in ``value``, or why there is none."""
    schema = _SCHEMAS.get(topic)
    if schema is None:
        return f"{topic}: not a topic of an alert's life"
    try:
        return schema.model_validate(orjson.loads(value))
    except orjson.JSONDecodeError as exc:
        return f"{topic}: not JSON: {exc}"
    except ValidationError as exc:
        return f"{topic}: does not match the {schema.__name__} record: {_brief(exc)}"


def add_lines(records: LifeRecords, topic: str, lines: Iterable[bytes]) -> list[str]:
    """Add the JSON lines of a file of ``topic`` records (blank lines ignored); return the
    problems, each prefixed with its line number."""
    problems = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        problem = records.add(topic, None, line.strip())
        if problem:
            problems.append(f"line {number}: {problem}")
    return problems


_SCHEMAS: dict[str, type[Alert | WorkOrder | Feedback | Incident]] = {
    ALERTS.name: Alert, ORDERS.name: WorkOrder, FEEDBACK.name: Feedback, INCIDENTS.name: Incident,
}


def _brief(exc: ValidationError) -> str:
    """'field: message' for each error, on one line."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(record)'}: {err['msg']}"
                     for err in exc.errors(include_url=False))
