"""Records yujing itself publishes: alerts, dead letters, and the records of the alert's life
after it fires — silences, incidents, work orders, feedback and scorecards."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator


class Severity(StrEnum):
    """The four Chinese warning levels, lowest first: blue (IV) < yellow < orange < red (I)."""

    BLUE = "blue"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.BLUE: 1, Severity.YELLOW: 2, Severity.ORANGE: 3, Severity.RED: 4}


class Alert(BaseModel):
    """One state change of one alert episode, published on ``alerts`` keyed by ``alert_id``.

    ``alert_id`` is stable for the same model, key and episode, so a consumer that sees a record
    twice (at-least-once delivery) can drop the duplicate by (alert_id, state).
    """

    alert_id: str
    model_id: str
    model_version: int
    state: Literal["firing", "escalated", "resolved"]
    severity: Severity
    departments: list[str]
    maturity: Literal["stable", "incubating", "disabled"] = "stable"
    key: str
    sources: list[str]
    """The topics the model reads."""
    grid_id: str | None = None
    town: str | None = None
    """The grid's town (镇街) from the reference data, e.g. ``xihu.lingyin``."""
    district: str | None = None
    first_ts: float = Field(description="event time (epoch s) the episode started")
    last_ts: float = Field(description="event time (epoch s) of the latest evidence")
    summary: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    reopened: int = 0
    """Times the alert fired again within its model's cooldown after resolving (same id)."""
    silenced_by: list[str] = Field(default_factory=list)
    """Ids of the silences in force that match it: recorded, not dispatched."""
    inhibited_by: str | None = None
    """The alert id of a red alert of a related model for the same key: recorded, not
    dispatched."""
    emitted_at: float | None = None
    """Wall-clock time (epoch s) the engine published this record."""

    @property
    def suppressed(self) -> bool:
        return bool(self.silenced_by) or self.inhibited_by is not None


class Silence(BaseModel):
    """A silence or maintenance window, on ``control.silences`` keyed by ``silence_id``.

    An alert matches when every matcher matches its field: ``model_id``, ``key``, ``grid_id``,
    ``town``, ``district``, ``severity`` or ``department`` (one of the alert's departments); a
    value may end in ``*`` (a prefix: ``hazchem.tank.*``). A record with ``ends_at`` in the past
    (or a tombstone) lifts it.
    """

    silence_id: str
    matchers: dict[str, str] = Field(min_length=1)
    starts_at: float
    ends_at: float
    reason: str = Field(min_length=1)
    created_by: str = "unknown"
    kind: Literal["silence", "maintenance"] = "silence"

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, alert: Alert) -> bool:
        for field, pattern in self.matchers.items():
            if field == "department":
                values = alert.departments
            else:
                value = getattr(alert, field, None)
                values = [] if value is None else [str(value)]
            if not any(_glob(pattern, v) for v in values):
                return False
        return True


def _glob(pattern: str, value: str) -> bool:
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


AlertMark = tuple[Literal["firing", "escalated", "resolved"], Severity, int]
"""An alert's (state, severity, reopened) as of one record."""


class Incident(BaseModel):
    """Alerts about one place within a time grouped for the duty officer, on ``incidents``
    keyed by ``incident_id`` (compacted: the latest record is the incident's state)."""

    incident_id: str
    place: str
    """What groups the alerts: ``grid:<grid_id>`` or ``key:<key>`` when the alert has no grid."""
    alert_ids: list[str]
    model_ids: list[str]
    severity: Severity
    district: str | None = None
    town: str | None = None
    grid_id: str | None = None
    opened_at: float
    updated_at: float
    state: Literal["open", "closed"] = "open"
    alert_states: dict[str, AlertMark] = Field(default_factory=dict)
    """Each alert's latest (state, severity, reopened) as dispatch applied it: which alerts
    still fire, and what lets a restarted dispatcher drop records it already applied."""
    closes_at: float | None = None
    """Once no alert fires: the wall-clock time it closes unless another alert joins."""


OrderLevel = Literal["town", "district", "city"]
"""The command level a work order is at (镇街 · 县区 · 市), lowest first: it starts at the level
of its place and climbs the routing file's chain while nobody acknowledges it."""
FeedbackStatus = Literal["acknowledged", "on_scene", "resolved", "false_alarm"]


class OrderEvent(BaseModel):
    """One entry of a work order's history."""

    at: float
    what: str
    """created, escalated, acknowledged, on_scene, resolved, false_alarm, alert_resolved …"""
    by: str | None = None
    note: str | None = None


class LevelHold(BaseModel):
    """A command level holding a work order from ``since`` (until the next hold, if any)."""

    level: OrderLevel
    place: str | None = None
    """Whose desk: the town's or the district's id; None at the city level."""
    since: float
    ack_within_s: float
    """How long this level had to acknowledge before the order climbed on."""


class WorkOrder(BaseModel):
    """A work order for one department about one incident, on ``dispatch.orders`` keyed by
    ``order_id`` (compacted: the latest record is the order's state, which is what lets a
    restarted dispatcher find its pending escalation timers)."""

    order_id: str
    incident_id: str
    alert_ids: list[str]
    model_ids: list[str]
    department: str
    level: OrderLevel = "district"
    """The level that holds it now: the department's desk at the town or district of the
    place, or at the city (where the command centre may acknowledge it too). Records written
    before the three levels have no level below the district."""
    severity: Severity
    district: str | None = None
    town: str | None = None
    grid_id: str | None = None
    key: str
    summary: str
    state: Literal["open", "acknowledged", "on_scene", "resolved", "false_alarm"] = "open"
    created_at: float
    ack_due: float
    """Wall-clock time by which it must be acknowledged, else it escalates."""
    acknowledged_at: float | None = None
    on_scene_at: float | None = None
    resolved_at: float | None = None
    escalations: int = 0
    history: list[OrderEvent] = Field(default_factory=list)
    ack_within_s: float | None = None
    """How long the level the order started at had to acknowledge (from the routing): its
    SLA, met when it was acknowledged before it first escalated."""
    ack_within_by_level: dict[OrderLevel, float] = Field(default_factory=dict)
    """Each level's limit from the start up to the city (from the routing), kept so a restarted
    dispatcher climbs on the same schedule; the city's is also the period of its
    re-escalations. Empty in records from before the three levels: ``ack_within_s`` at each."""
    levels: list[LevelHold] = Field(default_factory=list)
    """Who held it when, oldest first: the level it started at, then each one it climbed to."""


class Feedback(BaseModel):
    """What a department system sends back about a work order, on ``dispatch.feedback``."""

    order_id: str
    status: FeedbackStatus
    department: str
    at: float
    by: str | None = None
    note: str | None = None


class Scorecard(BaseModel):
    """Response figures of one department, one model or one command level (``town``,
    ``district``, ``city``) over a period, on ``performance.scorecards`` keyed by
    ``<scope>:<name>``."""

    scope: Literal["department", "model", "level"]
    name: str
    period_start: float
    period_end: float
    alerts: int = 0
    not_dispatched: int = 0
    """Alerts (of a model) recorded but never dispatched: every record of the alert was
    silenced or inhibited and no work order names it."""
    orders: int = 0
    acknowledged: int = 0
    resolved: int = 0
    false_alarms: int = 0
    closed: int = 0
    """Orders closed with a verdict (resolved or false alarm): what ``false_alarm_rate`` is
    over, so a rate is always shown with it."""
    open_backlog: int = 0
    ack_p50_s: float | None = None
    ack_p90_s: float | None = None
    resolve_p50_s: float | None = None
    resolve_p90_s: float | None = None
    sla_met: int = 0
    """Orders acknowledged within their severity's limit."""
    sla_total: int = 0
    sla_compliance: float | None = None
    false_alarm_rate: float | None = None
    """``false_alarms`` over ``closed`` (orders still open do not count); None while no order
    is closed."""

    @model_validator(mode="before")
    @classmethod
    def _closed_from_verdicts(cls, data: Any) -> Any:
        """A card recorded before ``closed`` was counted: every verdict closed an order.

        >>> Scorecard(scope="model", name="m", period_start=0, period_end=1, resolved=2,
        ...           false_alarms=1).closed
        3
        """
        if isinstance(data, dict) and "closed" not in data:
            return {**data, "closed": data.get("resolved", 0) + data.get("false_alarms", 0)}
        return data


DeadLetterClass = Literal["unknown_topic", "not_json", "not_object", "schema", "event_time",
                          "undecodable", "envelope", "scoring", "oversized"]
"""Why a record was dead-lettered, in a few words a metric can count by:

- ``unknown_topic``, ``not_json``, ``not_object``, ``schema``: the input is not an event of its
  topic (``reason`` names the field and what is wrong with it);
- ``event_time``: its time is too far in the future or older than the horizon;
- ``undecodable``: decoding failed in a way nothing above foresaw (a defect: please report it);
- ``envelope``: a re-keying record or a replay line that is not the envelope it should be;
- ``scoring``: a rule failed on the event (``reason`` names the rule; the other rules scored it);
- ``oversized``: a record yujing was to write that Kafka would refuse (what it was, its size)."""


class DeadLetter(BaseModel):
    """A record that could not be used, with why; published on ``events.deadletter``.

    ``value`` is the original bytes as text when they are UTF-8, else base64 (``encoding``); of a
    large record only the first ``topics.bounds.DEADLETTER_VALUE_BYTES`` (``truncated``), with
    the whole record's ``size`` and ``sha256`` to find it by.

    Restricted: a dead letter keeps the original bytes, personal data included (it is the
    evidence of what a department sent), and is not masked like alerts and logs
    (``topics.personal_data``). Only the operators who repair a department's feed may read
    ``events.deadletter`` (``docs/personal-data.md``).
    """

    source_topic: str
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    value: str
    encoding: Literal["utf-8", "base64"] = "utf-8"
    reason: str
    reason_class: DeadLetterClass = "schema"
    size: int | None = None
    """Bytes of the original record."""
    sha256: str | None = None
    """Of the original record's bytes (given when ``truncated``)."""
    truncated: bool = False
    rule_id: str | None = None
    """For ``scoring``: the rule that failed on the event."""
