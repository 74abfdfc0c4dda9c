"""threshold: a condition on each event, with an optional separate clear condition (hysteresis).

The decision layer adds ``for`` (how long the condition must have held) and severity; this kind
only says, per event, whether the condition holds, is clear, or is in between.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.base import UNDECIDED, KindParams, Reading, Verdict, WarningModel
from models.expr import CelExpr, Expression
from models.refdata import ModelEnv
from topics.codec import Event


class ThresholdParams(KindParams):
    condition: CelExpr
    """CEL over the event's fields; the event breaches when it is true."""
    clear: CelExpr | None = None
    """CEL; when given, the alert clears only once this is true (hysteresis band between)."""


class Threshold(WarningModel[None]):
    """Breach while ``condition`` holds; clear when ``clear`` holds (default: not ``condition``).

    >>> from topics.codec import Event
    >>> m = Threshold(ThresholdParams(condition="temp_c > 60", clear="temp_c < 55"))
    >>> [m.score_one(None, Event("t", "k", 0, {"temp_c": t})).verdict.value
    ...  for t in (61, 58, 54, None)]
    ['breach', 'band', 'clear', 'hold']
    >>> m.score_one(None, Event("t", "k", 0, {})) is UNDECIDED  # a HOLD the engine counts
    True
    """

    kind = "threshold"
    Params = ThresholdParams
    event_expressions = ("condition", "clear")
    breach_expressions = ("condition",)

    def __init__(self, params: ThresholdParams, env: ModelEnv | None = None) -> None:
        super().__init__(params, env)
        self.condition = self.expression(params.condition)
        self.clear = self.maybe_expression(params.clear)

    def new_state(self) -> None:
        return None

    def score_one(self, state: None, event: Event) -> Reading:
        data = event.data
        held = self.condition.evaluate(data)
        if held is True:
            return Reading(Verdict.BREACH, _values(self.condition, data))
        if self.clear is None:
            return Reading(Verdict.CLEAR, _values(self.condition, data)) if held is False \
                else UNDECIDED
        cleared = self.clear.evaluate(data)
        if cleared is True:
            return Reading(Verdict.CLEAR, _values(self.clear, data))
        if held is False or cleared is False:
            return Reading(Verdict.BAND, _values(self.condition, data))
        return UNDECIDED  # neither condition could be decided: a field they need is missing

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "condition": self.condition.source,
                "clear": self.clear.source if self.clear else f"not ({self.condition.source})"}


def _values(expr: Expression, data: Mapping[str, Any]) -> dict[str, Any]:
    names = expr.variables
    if len(names) == 1:  # most conditions name one field: a dict display, no comprehension
        return {names[0]: data.get(names[0])}
    return {name: data.get(name) for name in names}
