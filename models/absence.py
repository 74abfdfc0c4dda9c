"""absence: a key that has been heard from goes silent for longer than ``timeout``.

The alert comes from a deadline, not from an event: the engine calls ``on_deadline`` once event
time (replay) or the wall clock (worker) passes the last event plus ``timeout``. The next event of
the key clears it. ``arm_when`` limits which events start the clock (GPS lost *while ignition on*);
an event for which it is false stops the clock.

State per key: the last event time and two flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.base import HOLD, KindParams, Reading, Verdict, WarningModel, pickled_by_position
from models.durations import PositiveDuration, format_duration
from models.expr import CelExpr
from models.refdata import ModelEnv
from topics.codec import Event


class AbsenceParams(KindParams):
    timeout: PositiveDuration
    arm_when: CelExpr | None = None
    """CEL; only events for which it holds expect a successor. Default: every event."""


@pickled_by_position
@dataclass(slots=True)
class AbsenceState:
    last_seen: float | None = None
    armed: bool = False
    silent: bool = False


class Absence(WarningModel[AbsenceState]):
    """Breach when a key is silent for ``timeout`` after an arming event.

    >>> from topics.codec import Event
    >>> m = Absence(AbsenceParams(timeout="5m"))
    >>> s = m.new_state()
    >>> m.learn_one(s, Event("t", "k", 100.0, {}))
    >>> m.next_deadline(s)
    400.0
    >>> m.on_deadline(s, 400.0).verdict.value, m.next_deadline(s)
    ('breach', None)
    >>> m.score_one(s, Event("t", "k", 500.0, {})).verdict.value
    'clear'
    """

    kind = "absence"
    Params = AbsenceParams
    evidence_fields = ("last_seen", "timeout")
    event_expressions = ("arm_when",)
    breach_expressions = ("arm_when",)
    uses_deadlines = True

    def __init__(self, params: AbsenceParams, env: ModelEnv | None = None) -> None:
        super().__init__(params, env)
        self.arm_when = self.maybe_expression(params.arm_when)

    def new_state(self) -> AbsenceState:
        return AbsenceState()

    def score_one(self, state: AbsenceState, event: Event) -> Reading:
        if state.last_seen is not None and event.ts < state.last_seen:
            return HOLD  # a late event says nothing about the silence after the newest one
        return Reading(Verdict.CLEAR, {"last_seen": state.last_seen} if state.silent else {})

    def learn_one(self, state: AbsenceState, event: Event) -> None:
        if state.last_seen is not None and event.ts < state.last_seen:
            return
        state.last_seen = event.ts
        state.silent = False
        state.armed = self.arm_when is None or self.arm_when.evaluate(event.data) is True

    def next_deadline(self, state: AbsenceState) -> float | None:
        if not state.armed or state.last_seen is None:
            return None
        return state.last_seen + self.params.timeout

    def on_deadline(self, state: AbsenceState, at: float) -> Reading:
        deadline = self.next_deadline(state)
        if deadline is None or at < deadline:
            return HOLD
        state.armed = False
        state.silent = True
        return Reading(Verdict.BREACH, {"last_seen": state.last_seen,
                                        "timeout": format_duration(self.params.timeout)})

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "timeout": format_duration(self.params.timeout),
                "arm_when": self.arm_when.source if self.arm_when else "every event"}
