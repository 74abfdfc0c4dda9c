"""Response figures per command level (市 · 县区 · 镇街): how each tier does with the orders it
held. ``scores.scorecards`` adds a ``level`` scorecard for each level with orders.

An order's ``levels`` say who held it when (``engine.dispatch.core``). For each level an order
reached, created in the period:

- **orders**: it reached the level (started there or climbed to it);
- **acknowledged**: the level took it — the order's acknowledgement (its first response) came
  while the level held it; **time to acknowledge** from the moment the level got it;
- **resolved / false alarms / closed**: the verdicts of the orders the level took, **time to
  resolve** from the moment the level got it;
- **SLA**: met when the level took it within its own limit (``LevelHold.ack_within_s``);
  missed when it climbed on, or when its limit passed by ``period_end`` with no answer;
- **open_backlog**: orders without a verdict that the level holds at ``period_end``.

Orders recorded before the three levels have no ``levels``: they were held by the district
from their creation and, once escalated, by the city from their first escalation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from topics.records import LevelHold, Severity, WorkOrder

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine.tracking.scores import OrderOutcome, _Tally


def level_holds(order: WorkOrder, limits: Mapping[Severity, float]) -> list[LevelHold]:
    """Who held the order when, oldest first.

    >>> old = WorkOrder(order_id="O1", incident_id="I1", alert_ids=[], model_ids=["m"],
    ...                 department="fire", severity="red", district="xihu", key="T1",
    ...                 summary="", created_at=0, ack_due=600, level="city", escalations=1,
    ...                 ack_within_s=300, history=[{"at": 300, "what": "escalated"}])
    >>> [(h.level, h.place, h.since) for h in level_holds(old, {})]
    [('district', 'xihu', 0.0), ('city', None, 300.0)]
    """
    if order.levels:
        return order.levels
    limit = order.ack_within_s or limits[order.severity]
    first = LevelHold(level="district" if order.escalations else order.level,
                      place=order.district, since=order.created_at, ack_within_s=limit)
    if not order.escalations or order.level != "city":
        return [first]
    escalated = next((e.at for e in order.history if e.what == "escalated"), order.ack_due)
    return [first, LevelHold(level="city", since=escalated, ack_within_s=limit)]


def holder_at(holds: list[LevelHold], at: float) -> int:
    """The index of the hold in force at ``at`` (the first, for a time before it)."""
    return max((i for i, hold in enumerate(holds) if hold.since <= at), default=0)


def add_level_figures(tallies: Mapping[str, _Tally], outcome: OrderOutcome,
                      limits: Mapping[Severity, float], period_start: float,
                      period_end: float) -> None:
    """Add one order's figures to the tally of each level it reached (see the module doc)."""
    order = outcome.order
    holds = level_holds(order, limits)
    taken = None if outcome.acknowledged_at is None else holder_at(holds,
                                                                   outcome.acknowledged_at)
    if period_start < order.created_at <= period_end:
        for i, hold in enumerate(holds):
            tally = tallies[hold.level]
            tally.orders += 1
            if i == taken:
                assert outcome.acknowledged_at is not None
                tally.acknowledged += 1
                waited = max(0.0, outcome.acknowledged_at - hold.since)
                tally.ack_seconds.append(waited)
                met: bool | None = waited <= hold.ack_within_s
                if outcome.verdict == "resolved":
                    tally.resolved += 1
                    if outcome.verdict_at is not None:
                        tally.resolve_seconds.append(max(0.0, outcome.verdict_at - hold.since))
                elif outcome.verdict == "false_alarm":
                    tally.false_alarms += 1
            elif i + 1 < len(holds):
                met = False  # it climbed on unanswered
            else:
                met = False if period_end - hold.since > hold.ack_within_s else None
            if met is not None:
                tally.sla_total += 1
                tally.sla_met += met
    still_open = outcome.verdict is None or (outcome.verdict_at or 0) > period_end
    if order.created_at <= period_end and still_open:
        tallies[holds[holder_at(holds, period_end)].level].open_backlog += 1
