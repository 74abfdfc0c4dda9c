"""Response figures (行政问效) per department and per model, computed from records alone.

Input: alert records, work orders (a later record of an order supersedes an earlier one, as on
the compacted ``dispatch.orders``) and department feedback. Output: one ``Scorecard`` per
department and per model seen in the period, and per command level (``engine.tracking.levels``,
whose figures are the tier's own: from the moment it got the order). Plain Python over lists:
the service, the report and the tests all call ``scorecards`` the same way.

What is counted, for the period ``(period_start, period_end]``:

- **alerts**: alert episodes (distinct ``alert_id``) that first appeared in the period, by the
  wall-clock time of their first record (``emitted_at``); a model's own, and a department's when
  it is among the alert's departments. **not_dispatched** (models): those whose every record was
  silenced or inhibited and that no work order names.
- **orders**: work orders created in the period, for the order's department and for each of its
  models. An order's **acknowledgement** is its first response of any kind — the order's
  ``acknowledged_at`` (or ``on_scene_at``, ``resolved_at``) or any feedback, as dispatch counts
  it too. Its **verdict** is the order's own terminal state (``resolved`` / ``false_alarm``)
  when it has one — dispatch applies the first verdict and refuses later ones — and until then
  the earliest ``resolved`` / ``false_alarm`` feedback, so a verdict counts even before dispatch
  has updated the order (or while dispatch is down).
- **time to acknowledge / resolve**: acknowledgement or ``resolved`` verdict minus creation;
  p50 and p90 by the exact nearest-rank method (a duration that was observed, no interpolation).
- **SLA**: an order met it when acknowledged within its limit — the one dispatch routed it with
  (``ack_within_s``), else its severity's (red 5 min, orange 15 min, yellow 1 h, blue 4 h by
  default); one never acknowledged whose limit had passed by
  ``period_end`` missed it; one still within its limit is not judged yet.
- **closed**: orders created in the period that have a verdict (resolved or false alarm).
- **false_alarm_rate**: false alarms over ``closed``; orders still open do not count, so 2
  orders with 1 false alarm and 1 open give 1 of 1 (shown as ``100% of 1``, never a bare 100%),
  and None while none is closed. For a model it is the share of its dispatched alerts that
  were crying wolf: one minus its precision as the departments saw it.
- **open_backlog**: orders created up to ``period_end`` (in the period or before) without a
  verdict: the work still open.

>>> from topics.records import WorkOrder
>>> order = WorkOrder(order_id="O1", incident_id="I1", alert_ids=["A1"], model_ids=["m"],
...                   department="fire", severity="red", key="T1", summary="tank high",
...                   created_at=0, ack_due=300, acknowledged_at=120, state="acknowledged")
>>> fire, model, district = scorecards([], [order], [], period_start=-1, period_end=3600)
>>> fire.name, fire.orders, fire.ack_p50_s, fire.sla_compliance, fire.open_backlog
('fire', 1, 120.0, 1.0, 1)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from engine.tracking.levels import add_level_figures
from engine.tracking.store import alert_time, distinct_alert_records
from topics.records import Alert, Feedback, OrderLevel, Scorecard, Severity, WorkOrder

DEFAULT_SLA_SECONDS: dict[Severity, float] = {
    Severity.RED: 5 * 60.0, Severity.ORANGE: 15 * 60.0, Severity.YELLOW: 60 * 60.0,
    Severity.BLUE: 4 * 60 * 60.0,
}
"""How long each severity's work order may wait for acknowledgement (catalogue §4)."""

Verdict = Literal["resolved", "false_alarm"]
Scope = Literal["department", "model", "level"]


def nearest_rank(values: Iterable[float], percent: float) -> float | None:
    """The exact nearest-rank percentile: the smallest value with at least ``percent`` % of the
    values at or below it (None for no values).

    >>> nearest_rank([60, 300, 120, 600], 50), nearest_rank([60, 300, 120, 600], 90)
    (120.0, 600.0)
    >>> nearest_rank([], 50) is None
    True
    """
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return float(ordered[rank - 1])


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """A work order with the department feedback about it folded in: what tracking judges."""

    order: WorkOrder
    acknowledged_at: float | None
    verdict: Verdict | None
    verdict_at: float | None

    @property
    def ack_seconds(self) -> float | None:
        if self.acknowledged_at is None:
            return None
        return max(0.0, self.acknowledged_at - self.order.created_at)

    @property
    def resolve_seconds(self) -> float | None:
        if self.verdict != "resolved" or self.verdict_at is None:
            return None
        return max(0.0, self.verdict_at - self.order.created_at)

    def sla(self, limits: Mapping[Severity, float], now: float) -> bool | None:
        """Met (True), missed (False) or not judged yet (None) at ``now``."""
        # The limit dispatch routed the order with (one source of truth: the routing file);
        # the tracker's own table only for orders that do not carry it.
        limit = self.order.ack_within_s or limits[self.order.severity]
        waited = self.ack_seconds
        if waited is not None:
            return waited <= limit
        return False if now - self.order.created_at > limit else None


def fold_feedback(order: WorkOrder, feedback: Iterable[Feedback]) -> OrderOutcome:
    """Judge one order from its own record and the feedback about it (see the module doc).

    >>> from topics.records import Feedback, WorkOrder
    >>> order = WorkOrder(order_id="O1", incident_id="I1", alert_ids=[], model_ids=["m"],
    ...                   department="fire", severity="red", key="T1", summary="",
    ...                   created_at=0, ack_due=300, state="resolved", resolved_at=900)
    >>> fold_feedback(order, []).verdict, fold_feedback(order, []).acknowledged_at
    ('resolved', 900.0)
    >>> late = Feedback(order_id="O1", status="false_alarm", department="fire", at=1000)
    >>> fold_feedback(order, [late]).verdict  # dispatch refuses a second verdict: so do we
    'resolved'
    >>> waiting = order.model_copy(update={"state": "acknowledged", "resolved_at": None})
    >>> outcome = fold_feedback(waiting, [late])
    >>> outcome.verdict, outcome.acknowledged_at, outcome.resolve_seconds
    ('false_alarm', 1000.0, None)
    """
    responses = [t for t in (order.acknowledged_at, order.on_scene_at, order.resolved_at)
                 if t is not None]
    responses += [item.at for item in feedback]
    if order.state in ("resolved", "false_alarm"):
        verdict: tuple[float, Verdict] | None = (_terminal_time(order), order.state)
    else:
        verdict = min(((item.at, item.status) for item in feedback
                       if item.status in ("resolved", "false_alarm")), default=None)
    return OrderOutcome(order=order, acknowledged_at=min(responses, default=None),
                        verdict=verdict[1] if verdict else None,
                        verdict_at=verdict[0] if verdict else None)


def _terminal_time(order: WorkOrder) -> float:
    """When the order reached its terminal state: ``resolved_at`` (dispatch sets it for a false
    alarm too), else its history's entry, else (no trace of it) its creation."""
    if order.resolved_at is not None:
        return order.resolved_at
    for event in reversed(order.history):
        if event.what == order.state:
            return event.at
    return order.created_at


@dataclass
class _Tally:
    """The figures of one department or model as they are gathered."""

    alerts: set[str] = field(default_factory=set)
    not_dispatched: set[str] = field(default_factory=set)
    orders: int = 0
    acknowledged: int = 0
    resolved: int = 0
    false_alarms: int = 0
    open_backlog: int = 0
    ack_seconds: list[float] = field(default_factory=list)
    resolve_seconds: list[float] = field(default_factory=list)
    sla_met: int = 0
    sla_total: int = 0

    def add_order(self, outcome: OrderOutcome, limits: Mapping[Severity, float],
                  now: float) -> None:
        self.orders += 1
        if outcome.ack_seconds is not None:
            self.acknowledged += 1
            self.ack_seconds.append(outcome.ack_seconds)
        if outcome.verdict == "resolved":
            self.resolved += 1
            if outcome.resolve_seconds is not None:
                self.resolve_seconds.append(outcome.resolve_seconds)
        elif outcome.verdict == "false_alarm":
            self.false_alarms += 1
        met = outcome.sla(limits, now)
        if met is not None:
            self.sla_total += 1
            self.sla_met += met

    def card(self, scope: Scope, name: str, start: float, end: float) -> Scorecard:
        closed = self.resolved + self.false_alarms
        return Scorecard(
            scope=scope, name=name, period_start=start, period_end=end,
            alerts=len(self.alerts), not_dispatched=len(self.not_dispatched),
            orders=self.orders, acknowledged=self.acknowledged, resolved=self.resolved,
            false_alarms=self.false_alarms, closed=closed, open_backlog=self.open_backlog,
            ack_p50_s=nearest_rank(self.ack_seconds, 50),
            ack_p90_s=nearest_rank(self.ack_seconds, 90),
            resolve_p50_s=nearest_rank(self.resolve_seconds, 50),
            resolve_p90_s=nearest_rank(self.resolve_seconds, 90),
            sla_met=self.sla_met, sla_total=self.sla_total,
            sla_compliance=self.sla_met / self.sla_total if self.sla_total else None,
            false_alarm_rate=self.false_alarms / closed if closed else None)


def latest_orders(orders: Iterable[WorkOrder]) -> dict[str, WorkOrder]:
    """The latest record of each order: a later record supersedes an earlier one."""
    latest: dict[str, WorkOrder] = {}
    for order in orders:
        latest[order.order_id] = order
    return latest


def outcomes(orders: Iterable[WorkOrder], feedback: Iterable[Feedback]
             ) -> dict[str, OrderOutcome]:
    """Every order (latest record) judged with its feedback, by order id."""
    by_order: dict[str, list[Feedback]] = defaultdict(list)
    for item in feedback:
        by_order[item.order_id].append(item)
    return {order_id: fold_feedback(order, by_order.get(order_id, ()))
            for order_id, order in latest_orders(orders).items()}


def scorecards(alerts: Iterable[Alert], orders: Iterable[WorkOrder],
               feedback: Iterable[Feedback], period_start: float, period_end: float,
               sla_seconds: Mapping[Severity, float] = DEFAULT_SLA_SECONDS) -> list[Scorecard]:
    """One scorecard per department, per model and per command level with anything in the
    period (or open work), in that order, each scope by name (levels lowest first). See the
    module doc for what each figure means."""
    limits = {**DEFAULT_SLA_SECONDS, **sla_seconds}
    departments: dict[str, _Tally] = defaultdict(_Tally)
    models: dict[str, _Tally] = defaultdict(_Tally)
    levels: dict[str, _Tally] = defaultdict(_Tally)

    def in_period(t: float) -> bool:
        return period_start < t <= period_end

    judged = outcomes(orders, feedback)
    dispatched_alerts = {alert_id for outcome in judged.values()
                         for alert_id in outcome.order.alert_ids}
    for episode in _episodes(alerts).values():
        if not in_period(episode.first_seen):
            continue
        models[episode.model_id].alerts.add(episode.alert_id)
        for department in episode.departments:
            departments[department].alerts.add(episode.alert_id)
        if episode.always_suppressed and episode.alert_id not in dispatched_alerts:
            models[episode.model_id].not_dispatched.add(episode.alert_id)

    for outcome in judged.values():
        order = outcome.order
        tallies = [departments[order.department], *(models[m] for m in set(order.model_ids))]
        if in_period(order.created_at):
            for tally in tallies:
                tally.add_order(outcome, limits, period_end)
        still_open = outcome.verdict is None or (outcome.verdict_at or 0) > period_end
        if order.created_at <= period_end and still_open:
            for tally in tallies:
                tally.open_backlog += 1
        add_level_figures(levels, outcome, limits, period_start, period_end)

    return ([t.card("department", n, period_start, period_end)
             for n, t in sorted(departments.items())]
            + [t.card("model", n, period_start, period_end) for n, t in sorted(models.items())]
            + [levels[n].card("level", n, period_start, period_end)
               for n in get_args(OrderLevel) if n in levels])


@dataclass
class _Episode:
    alert_id: str
    model_id: str
    first_seen: float
    departments: set[str]
    always_suppressed: bool


def _episodes(alerts: Iterable[Alert]) -> dict[str, _Episode]:
    """Alert records grouped by episode (``alert_id``), duplicates dropped."""
    episodes: dict[str, _Episode] = {}
    for alert in distinct_alert_records(alerts):
        episode = episodes.get(alert.alert_id)
        if episode is None:
            episodes[alert.alert_id] = _Episode(
                alert_id=alert.alert_id, model_id=alert.model_id, first_seen=alert_time(alert),
                departments=set(alert.departments), always_suppressed=alert.suppressed)
            continue
        episode.first_seen = min(episode.first_seen, alert_time(alert))
        episode.departments.update(alert.departments)
        episode.always_suppressed = episode.always_suppressed and alert.suppressed
    return episodes
