"""Escalation: a firing alert rises to a higher level when its ``when`` holds, or its
``after`` has passed since it fired, whichever the level asks for."""

from __future__ import annotations

from typing import Any

from engine.decision.episodes import DecisionState
from engine.rule_files.loader import CompiledRule


def escalation_deadline(rule: CompiledRule, decision: DecisionState) -> float | None:
    """When the next level that waits only for time (``after``, no ``when``) is due."""
    if not decision.firing or decision.fired_at is None:
        return None
    rank = (decision.severity or rule.spec.severity).rank
    for severity, when, after in rule.escalations:
        if severity.rank > rank and when is None and after is not None:
            return decision.fired_at + after
    return None


def raise_level(rule: CompiledRule, decision: DecisionState, ts: float,
                values: dict[str, Any] | None) -> bool:
    """Raise the firing alert to the highest level whose conditions hold; True if it rose.
    ``values`` is None when the clock asks (only levels without ``when`` can be met)."""
    rank = (decision.severity or rule.spec.severity).rank
    reached = None
    for severity, when, after in rule.escalations:
        if severity.rank <= rank:
            continue
        if after is not None and (decision.fired_at is None or ts - decision.fired_at < after):
            continue
        if when is not None and (values is None or when.evaluate(values) is not True):
            continue
        reached = severity
    if reached is None:
        return False
    decision.severity = reached
    return True
