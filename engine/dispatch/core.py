"""The dispatcher's decisions, in plain Python: alerts and feedback in, records to publish out.

An alert record joins its incident (``engine.dispatch.grouping``); a firing or escalated alert
that nobody silenced or inhibited is routed (``engine.dispatch.routing``) and reaches one work
order per incident and department — created, or joined when the incident already has an
unfinished order for that department (a higher severity raises the order and brings its
``ack_due`` forward). A resolved alert is noted in its orders' history; an order stays until
its department closes it. Department feedback moves an order on. An order starts at the command
level of its place (``engine.dispatch.levels``: its town's, its district's, or the city's); still
unacknowledged at ``ack_due`` it climbs the routing file's chain — town, district, city — each
level with its own limit, and at the city escalates again every period while nobody answers.
The order's ``levels`` record who held it when. Timers fire from ``advance(now)``, with no input.

Nothing here touches a broker or a clock: every call gets ``now`` and returns the records to
publish, so the service, the tests and a replay run the same code.

>>> from pathlib import Path
>>> from engine.dispatch.routing import parse_routing
>>> routing, _ = parse_routing('''
... defaults:
...   levels: [{level: town, ack_within: {red: 3m}}, {level: district}, {level: city}]
...   ack_within: {red: 5m}
... route: {}''', Path("r.yaml"))
>>> dispatcher = Dispatcher(routing)
>>> alert = Alert(alert_id="a1", model_id="hazchem.tank.level_high_high", model_version=1,
...               state="firing", severity="red", departments=["emergency_management"],
...               key="T1", sources=[], grid_id="G0001", town="xihu.lingyin", district="xihu",
...               first_ts=0, last_ts=0, summary="tank T1 at 96%")
>>> (order,) = dispatcher.on_alert(alert, now=1000.0).orders
>>> order.department, order.level, order.ack_due
('emergency_management', 'town', 1180.0)
>>> dispatcher.advance(1179.0).orders
[]
>>> (order,) = dispatcher.advance(1180.0).orders
>>> order.level, order.escalations, order.ack_due, order.history[-1].what
('district', 1, 1480.0, 'escalated')
>>> (order,) = dispatcher.advance(1480.0).orders
>>> [(hold.level, hold.place, hold.since) for hold in order.levels]
[('town', 'xihu.lingyin', 1000.0), ('district', 'xihu', 1180.0), ('city', None, 1480.0)]
>>> ack = Feedback(order_id=order.order_id, status="acknowledged",
...                department="emergency_management", at=1500.0)
>>> dispatcher.on_feedback(ack, now=1501.0).orders[0].state
'acknowledged'
>>> dispatcher.advance(1780.0).orders
[]
"""

from __future__ import annotations

import hashlib
import heapq
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import get_args

from engine.dispatch.grouping import IncidentGrouper
from engine.dispatch.levels import next_level, place_at
from engine.dispatch.routing import Routed, Routing
from models.durations import format_duration
from topics.records import (
    Alert,
    Feedback,
    Incident,
    LevelHold,
    OrderEvent,
    OrderLevel,
    Severity,
    WorkOrder,
)

TERMINAL_STATES = frozenset({"resolved", "false_alarm"})
"""A department has closed the order: nothing more is added to it."""

DISPATCH = "dispatch"
"""``by`` of the history entries dispatch writes itself."""


class FeedbackRefused(Exception):
    """Feedback that cannot be applied (unknown order, wrong department, order closed)."""


@dataclass(frozen=True, slots=True)
class Happening:
    """Something that happened to an order, for metrics and logs."""

    what: str
    """created, escalated, or the feedback status applied."""
    order_id: str
    department: str
    severity: Severity
    level: str


@dataclass(slots=True)
class Outputs:
    """What one call changed: the latest state of each order and incident, to publish."""

    orders: list[WorkOrder] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    happened: list[Happening] = field(default_factory=list)


def order_id_for(incident_id: str, department: str, sequence: int) -> str:
    """Stable id of the ``sequence``-th order (from 0) of one incident for one department.

    >>> order_id_for("a6ef96644347247b735e740c", "transport", 0)
    '6c26f154d27b99b18fbd349a'
    """
    basis = f"{incident_id}|{department}|{sequence}"
    return hashlib.blake2b(basis.encode(), digest_size=12).hexdigest()


class Dispatcher:
    """Incidents and work orders in memory, with their timers."""

    def __init__(self, routing: Routing, retention_s: float = 7 * 86400.0) -> None:
        self.routing = routing
        self.retention_s = retention_s
        """A closed incident whose orders are all closed is forgotten this long after."""
        self.grouper = IncidentGrouper(routing.group_within_s)
        self.orders: dict[str, WorkOrder] = {}
        self._orders_of_pair: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._orders_of_incident: dict[str, list[str]] = defaultdict(list)
        self._ack_timers: list[tuple[float, str]] = []
        self._forget_timers: list[tuple[float, str]] = []

    # -- inputs ------------------------------------------------------------------------------

    def on_alert(self, alert: Alert, now: float) -> Outputs:
        grouped = self.grouper.add(alert, now)
        if grouped is None:
            return Outputs()  # a redelivered or stale record: already applied
        incident = grouped.incident
        changed: dict[str, WorkOrder] = {}
        happened: list[Happening] = []
        if alert.state == "resolved":
            for order in self._unfinished_orders(incident.incident_id):
                if alert.alert_id in order.alert_ids:
                    order.history.append(OrderEvent(
                        at=now, what="alert_resolved", by=DISPATCH,
                        note=f"alert {alert.alert_id} resolved: {alert.summary}"))
                    changed[order.order_id] = order
        elif not alert.suppressed:
            routed = self.routing.route(alert)
            reopened = grouped.previous is not None and grouped.previous[0] == "resolved"
            for department, limits in routed.limits.items():
                order = self._unfinished_order(incident.incident_id, department)
                if order is None:
                    order = self._create(incident, alert, department, limits, routed, now)
                    happened.append(_happening("created", order))
                    changed[order.order_id] = order
                    continue
                if reopened and alert.alert_id in order.alert_ids:
                    order.history.append(OrderEvent(
                        at=now, what="alert_reopened", by=DISPATCH,
                        note=f"alert {alert.alert_id} fires again: {alert.summary}"))
                    changed[order.order_id] = order
                if self._join(order, alert, limits, now):
                    changed[order.order_id] = order
            for order in self._unfinished_orders(incident.incident_id):
                # The routing (or the alert) changed since the order was made: an order of the
                # alert whose department is not routed now still follows its severity.
                if alert.alert_id in order.alert_ids and \
                        order.department not in routed.limits:
                    limits = self.routing.level_limits(alert.severity)
                    if self._join(order, alert, limits, now):
                        changed[order.order_id] = order
        return _snapshot(changed.values(), [incident], happened)

    def on_feedback(self, feedback: Feedback, now: float) -> Outputs:
        """Apply a department's feedback; FeedbackRefused says why it cannot be."""
        order = self.orders.get(feedback.order_id)
        if order is None:
            raise FeedbackRefused(f"no work order {feedback.order_id!r}")
        if feedback.department not in (order.department, self.routing.escalate_to):
            raise FeedbackRefused(f"work order {order.order_id} is {order.department}'s, not "
                                  f"{feedback.department}'s")
        entry = OrderEvent(at=feedback.at, what=feedback.status,
                           by=feedback.by or feedback.department, note=feedback.note)
        if entry in order.history:
            return Outputs()  # a redelivered copy
        if order.state in TERMINAL_STATES:
            raise FeedbackRefused(f"work order {order.order_id} is already {order.state}")
        # Any response stops the escalation clock: being on the scene or closing the order
        # acknowledges it too (tracking counts the first response as the acknowledgement).
        if order.acknowledged_at is None:
            order.acknowledged_at = feedback.at
        if feedback.status == "acknowledged":
            if order.state == "open":
                order.state = "acknowledged"
        elif feedback.status == "on_scene":
            order.state = "on_scene"
            if order.on_scene_at is None:
                order.on_scene_at = feedback.at
        else:
            order.state = feedback.status
            order.resolved_at = feedback.at
        order.history.append(entry)
        return _snapshot([order], [], [_happening(feedback.status, order)])

    # -- the clock ---------------------------------------------------------------------------

    def advance(self, now: float) -> Outputs:
        """Escalate orders past ``ack_due``, close quiet incidents, forget old closed ones."""
        changed: dict[str, WorkOrder] = {}
        happened: list[Happening] = []
        while self._ack_timers and self._ack_timers[0][0] <= now:
            due, order_id = heapq.heappop(self._ack_timers)
            order = self.orders.get(order_id)
            if order is None or order.state != "open" or order.ack_due != due:
                continue  # acknowledged, or its due time moved: this timer is stale
            self._escalate(order, now)
            changed[order_id] = order
            happened.append(_happening("escalated", order))
        closed = self.grouper.advance(now)
        for incident in closed:
            heapq.heappush(self._forget_timers, (now + self.retention_s, incident.incident_id))
        self._forget_old(now)
        return _snapshot(changed.values(), closed, happened)

    def _escalate(self, order: WorkOrder, now: float) -> None:
        missed = self._limit_at(order, order.level)
        order.escalations += 1
        up = next_level(self.routing.chain, order.level)
        if up is not None:
            place = place_at(up, order.town, order.district)
            note = (f"not acknowledged within {format_duration(missed)} at the {order.level} "
                    f"level{_of(place_at(order.level, order.town, order.district))}: escalated "
                    f"to the {up} level{_of(place or self.routing.escalate_to)}")
            order.level = up
            limit = self._limit_at(order, up)
            order.levels.append(LevelHold(level=up, place=place, since=now, ack_within_s=limit))
        else:
            limit = missed
            note = (f"still not acknowledged at the {order.level} level (escalation "
                    f"{order.escalations})")
        # The next period follows the missed one; a dispatcher that was down longer than a
        # period escalates once and starts a fresh period rather than catching up in a burst.
        due = order.ack_due + limit
        order.ack_due = due if due > now else now + limit
        order.history.append(OrderEvent(at=now, what="escalated", by=DISPATCH, note=note))
        heapq.heappush(self._ack_timers, (order.ack_due, order.order_id))

    def _limit_at(self, order: WorkOrder, level: OrderLevel) -> float:
        """How long ``level`` has to acknowledge the order: as routed when it was made (one
        limit for every level in records from before the three levels), else the routing's."""
        if level in order.ack_within_by_level:
            return order.ack_within_by_level[level]
        if order.ack_within_s:
            return order.ack_within_s
        limits = self.routing.level_limits(order.severity)
        return limits.get(level, self.routing.ack_limits[order.severity])

    def _forget_old(self, now: float) -> None:
        while self._forget_timers and self._forget_timers[0][0] <= now:
            _, incident_id = heapq.heappop(self._forget_timers)
            incident = self.grouper.incidents.get(incident_id)
            if incident is None or incident.state != "closed":
                continue
            if self._unfinished_orders(incident_id):
                # Someone still owes an answer: keep it, look again later.
                heapq.heappush(self._forget_timers, (now + self.retention_s, incident_id))
                continue
            for order_id in self._orders_of_incident.pop(incident_id, []):
                order = self.orders.pop(order_id)
                self._orders_of_pair.pop((incident_id, order.department), None)
            self.grouper.forget(incident_id)

    # -- restart -----------------------------------------------------------------------------

    def restore(self, orders: Iterable[WorkOrder], incidents: Iterable[Incident]) -> None:
        """Rebuild from the latest record of each order and incident (the compacted topics):
        open orders get their escalation timers back, quiet incidents their closing timers."""
        incidents = list(incidents)
        self.grouper.restore(incidents)
        for order in sorted(orders, key=lambda o: o.created_at):
            self._add_order(order)
        for incident in incidents:
            if incident.state == "closed":
                heapq.heappush(self._forget_timers,
                               (incident.updated_at + self.retention_s, incident.incident_id))

    # -- orders ------------------------------------------------------------------------------

    @property
    def unfinished_orders(self) -> int:
        """Orders no department has closed yet."""
        return sum(1 for o in self.orders.values() if o.state not in TERMINAL_STATES)

    def unfinished_by_level(self) -> dict[str, int]:
        """Orders no department has closed yet, per command level (every level present)."""
        counts = dict.fromkeys(get_args(OrderLevel), 0)
        for order in self.orders.values():
            if order.state not in TERMINAL_STATES:
                counts[order.level] += 1
        return counts

    @property
    def open_incidents(self) -> int:
        return sum(1 for i in self.grouper.incidents.values() if i.state == "open")

    def _add_order(self, order: WorkOrder) -> None:
        self.orders[order.order_id] = order
        self._orders_of_pair[(order.incident_id, order.department)].append(order.order_id)
        self._orders_of_incident[order.incident_id].append(order.order_id)
        if order.state == "open":
            heapq.heappush(self._ack_timers, (order.ack_due, order.order_id))

    def _unfinished_order(self, incident_id: str, department: str) -> WorkOrder | None:
        for order_id in reversed(self._orders_of_pair.get((incident_id, department), [])):
            order = self.orders[order_id]
            if order.state not in TERMINAL_STATES:
                return order
        return None

    def _unfinished_orders(self, incident_id: str) -> list[WorkOrder]:
        orders = (self.orders[i] for i in self._orders_of_incident.get(incident_id, []))
        return [o for o in orders if o.state not in TERMINAL_STATES]

    def _create(self, incident: Incident, alert: Alert, department: str,
                limits: dict[OrderLevel, float], routed: Routed, now: float) -> WorkOrder:
        sequence = len(self._orders_of_pair.get((incident.incident_id, department), []))
        path = next((" > ".join(m.path) for m in routed.matches if department in m.departments),
                    "no department named: the escalation target")
        level, limit = next(iter(limits.items()))  # the lowest level: where it starts
        town, district = alert.town or incident.town, alert.district or incident.district
        place = place_at(level, town, district)
        order = WorkOrder(
            order_id=order_id_for(incident.incident_id, department, sequence),
            incident_id=incident.incident_id, alert_ids=[alert.alert_id],
            model_ids=[alert.model_id], department=department, level=level,
            severity=alert.severity, district=district, town=town,
            grid_id=alert.grid_id or incident.grid_id, key=alert.key, summary=alert.summary,
            created_at=now, ack_due=now + limit, ack_within_s=limit,
            ack_within_by_level=dict(limits),
            levels=[LevelHold(level=level, place=place, since=now, ack_within_s=limit)],
            history=[OrderEvent(at=now, what="created", by=DISPATCH,
                                note=f"alert {alert.alert_id} via {path}; the {level} "
                                     f"level{_of(place)} to acknowledge within "
                                     f"{format_duration(limit)}")])
        self._add_order(order)
        return order

    def _join(self, order: WorkOrder, alert: Alert, limits: dict[OrderLevel, float],
              now: float) -> bool:
        """Add the alert to an unfinished order; say whether the order changed."""
        changed = False
        if alert.alert_id not in order.alert_ids:
            order.alert_ids.append(alert.alert_id)
            if alert.model_id not in order.model_ids:
                order.model_ids.append(alert.model_id)
            order.history.append(OrderEvent(at=now, what="alert_added", by=DISPATCH,
                                            note=f"alert {alert.alert_id}: {alert.summary}"))
            changed = True
        if alert.severity.rank > order.severity.rank:
            order.history.append(OrderEvent(
                at=now, what="severity_raised", by=DISPATCH,
                note=f"{order.severity.value} -> {alert.severity.value}: {alert.summary}"))
            order.severity = alert.severity
            order.summary = alert.summary
            # An order already acknowledged is in hand: a higher severity asks for no new
            # acknowledgement. One still waiting must be acknowledged by the stricter limit.
            if order.state == "open":
                self._tighten(order, limits)
                limit = self._limit_at(order, order.level)
                if now + limit < order.ack_due:
                    order.ack_due = now + limit
                    heapq.heappush(self._ack_timers, (order.ack_due, order.order_id))
            changed = True
        return changed


    def _tighten(self, order: WorkOrder, limits: dict[OrderLevel, float]) -> None:
        """Each level of an order whose severity rose keeps the stricter of its limits."""
        held = order.levels[0].level if order.levels else order.level
        for level in (order.ack_within_by_level or limits):
            if level in limits:
                order.ack_within_by_level[level] = min(self._limit_at(order, level),
                                                       limits[level])
        start = order.ack_within_by_level.get(held)
        if start is not None:
            order.ack_within_s = min(order.ack_within_s or start, start)
        if order.levels and order.level in order.ack_within_by_level:
            order.levels[-1].ack_within_s = order.ack_within_by_level[order.level]


def _of(place: str | None) -> str:
    return f" ({place})" if place else ""


def _happening(what: str, order: WorkOrder) -> Happening:
    return Happening(what, order.order_id, order.department, order.severity, order.level)


def _snapshot(orders: Iterable[WorkOrder], incidents: Iterable[Incident],
              happened: list[Happening]) -> Outputs:
    # Copies: the dispatcher keeps changing its own objects, a published record must not.
    return Outputs([o.model_copy(deep=True) for o in orders],
                   [i.model_copy(deep=True) for i in incidents], happened)
