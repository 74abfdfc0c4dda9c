"""A rule's alert from its readings and the clock: the episode's transitions (``episodes``), its
escalations, the records built for them, and the inhibition those records wait for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.decision.alert_record import build_alert
from engine.decision.episodes import DecisionState, clear_deadline, decide, settle
from engine.decision.escalation import escalation_deadline, raise_level
from engine.decision.inhibition import DecisionOf, Inhibition
from engine.rule_files.loader import CompiledRule
from models.base import Reading, Verdict
from topics.records import Alert


def alert_deadline(rule: CompiledRule, decision: DecisionState) -> float | None:
    """When the alert itself next changes if no reading comes first: a clear that lasted
    ``clear_for`` resolves it, an escalation's ``after`` raises it."""
    times = [t for t in (clear_deadline(decision, rule.spec.clear_for),
                         escalation_deadline(rule, decision)) if t is not None]
    return min(times) if times else None


class AlertDecider:
    """Decides the alerts of every rule: what the scoring core hands it (a reading, the clock)
    becomes alert records, appended to the caller's list."""

    def __init__(self, rules: Iterable[CompiledRule] = ()) -> None:
        self.inhibition = Inhibition()
        self.inhibition.set_rules(rules)
        self.awaiting_inhibition = self.inhibition.awaiting
        """The alerts of this moment waiting for ``decide_inhibition`` (the same list, always:
        the core checks it after every event)."""

    def set_rules(self, rules: Iterable[CompiledRule]) -> None:
        self.inhibition.set_rules(rules)

    def reading(self, rule: CompiledRule, decision: DecisionState, reading: Reading, ts: float,
                key: str, data: dict[str, Any], alerts: list[Alert]) -> None:
        """Apply one reading at event time ``ts``; ``data`` is the event (or the context kept
        for a deadline)."""
        spec = rule.spec
        transition = decide(decision, reading, ts, spec.hold_for, rule.id, key,
                            spec.clear_for, spec.cooldown)
        if transition == "firing":
            decision.severity = spec.severity
            raise_level(rule, decision, ts, {**data, **(reading.evidence or {})})
            alerts.append(self._alert(rule, decision, transition, key, data))
        elif transition is not None:
            alerts.append(self._alert(rule, decision, transition, key, data))
        elif decision.firing and reading.verdict is Verdict.BREACH and rule.escalations \
                and raise_level(rule, decision, ts, {**data, **(reading.evidence or {})}):
            alerts.append(self._alert(rule, decision, "escalated", key, data))

    def clock(self, rule: CompiledRule, decision: DecisionState, key: str, now: float,
              data: dict[str, Any], alerts: list[Alert]) -> None:
        """What the clock does to the alert itself: escalate, resolve a clear that lasted."""
        due = escalation_deadline(rule, decision)
        if due is not None and due < now and raise_level(rule, decision, due, None):
            decision.last_ts = max(decision.last_ts or due, due)
            alerts.append(self._alert(rule, decision, "escalated", key, data))
        if settle(decision, now, rule.spec.clear_for) is not None:
            alerts.append(self._alert(rule, decision, "resolved", key, data))

    def decide_inhibition(self, decision_of: DecisionOf) -> None:
        """Mark the moment's alerts inhibited by the red alerts firing now (call once every
        rule has had its say at an event or a deadline)."""
        self.inhibition.decide(decision_of)

    def start_moment(self) -> None:
        """Begin a batch or a clock tick: drop alerts left waiting by one that raised."""
        self.inhibition.awaiting.clear()

    def _alert(self, rule: CompiledRule, decision: DecisionState, state: str, key: str,
               data: dict[str, Any]) -> Alert:
        alert = build_alert(rule, decision, state, key, data)
        self.inhibition.hold(alert, rule, key)
        return alert
