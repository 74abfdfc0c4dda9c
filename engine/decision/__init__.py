"""The decision layer: everything that decides an alert, apart from the scoring core that feeds
it readings and keeps its state.

``episodes``: the ``for`` duration, episodes, stable alert ids, ``clear_for`` and the cooldown;
``escalation``: higher levels by condition or by time; ``alert_record``: the bounded record
published; ``inhibition``: alerts marked while a red alert that inhibits them fires;
``decider``: the one the core calls, tying them together for a rule.
"""

from engine.decision.decider import AlertDecider, alert_deadline
from engine.decision.episodes import (
    DecisionState,
    Transition,
    alert_id_for,
    applied_quietly,
    clear_deadline,
    decide,
    settle,
)

__all__ = ["AlertDecider", "DecisionState", "Transition", "alert_deadline", "alert_id_for",
           "applied_quietly", "clear_deadline", "decide", "settle"]
