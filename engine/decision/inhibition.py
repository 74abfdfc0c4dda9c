"""Inhibition: while a rule's red alert fires for a key, the alerts of the rules it
``inhibits`` for that key are still published, marked ``inhibited_by`` it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from engine.decision.episodes import DecisionState
from engine.plans import stream_of
from engine.rule_files.loader import CompiledRule
from topics.records import Alert, Severity

DecisionOf = Callable[[str, str, str], DecisionState | None]
"""(stream, key, rule state key) -> that rule's decision for that key, if it has one."""


class Inhibition:
    """Which rules' red alerts inhibit which, and the alerts of one moment waiting to be
    marked."""

    def __init__(self) -> None:
        self._inhibitors: dict[str, list[tuple[CompiledRule, list[str]]]] = {}
        """Model id -> (rule, its streams) of the rules whose red alert inhibits it."""
        self.awaiting: list[tuple[Alert, CompiledRule, str]] = []
        """Alerts of inhibitable rules raised at this moment (an event, a deadline), whose
        ``inhibited_by`` is decided once every rule has had its say (``decide``)."""

    def set_rules(self, rules: Iterable[CompiledRule]) -> None:
        rules = list(rules)
        self._inhibitors = {}
        for red in rules:
            for pattern in red.spec.inhibits:
                for target in rules:
                    if target is not red and _glob(pattern, target.id):
                        self._inhibitors.setdefault(target.id, []).append(
                            (red, [stream_of(red, t) for t in red.spec.sources]))

    def hold(self, alert: Alert, rule: CompiledRule, key: str) -> None:
        """Keep ``alert`` to be marked once the moment's other rules have spoken: a red alert
        the same event raises (or resolves) counts whether its rule comes before this one or
        after."""
        if alert.severity is not Severity.RED and rule.id in self._inhibitors:
            self.awaiting.append((alert, rule, key))

    def decide(self, decision_of: DecisionOf) -> None:
        """Mark the alerts raised at this moment ``inhibited_by`` the red alerts firing now."""
        for alert, rule, key in self.awaiting:
            alert.inhibited_by = self._inhibited_by(rule, key, decision_of)
        self.awaiting.clear()

    def _inhibited_by(self, rule: CompiledRule, key: str, decision_of: DecisionOf) -> str | None:
        """The id of a red alert firing for ``key`` from a rule that inhibits this one."""
        for red, streams in self._inhibitors.get(rule.id, ()):
            for stream in streams:
                decision = decision_of(stream, key, red.state_key)
                if decision is not None and decision.firing \
                        and decision.severity is Severity.RED:
                    return decision.alert_id
        return None


def _glob(pattern: str, value: str) -> bool:
    return value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern
