"""deadline: an open item is still open when the clock reaches the due time it carries.

Unlike ``sequence``'s fixed ``within``, each item brings its own due time in a timestamp field
(``field``, e.g. an approval's legal deadline ``due_at``). Every event of the key for which
``open_when`` holds (default: every event) keeps the item open and sets its due time from
``field`` (an event without the field keeps the earlier one); an event for which ``open_when``
is false closes the item: no deadline any more, and a firing alert clears.

The limit is the due time less ``lead`` (``lead: 1d``: a day before the deadline). The alert
comes from the clock: once event time has passed the limit, ``on_deadline`` breaches with no
further input, and the alert bears the limit's time. An event of the still-open item at or
after the limit breaches too (keeps a firing alert firing); one that moves the due time out so
the limit lies ahead again (an extension) clears. An event older than the key's newest is
ignored (HOLD).

State per key: the due time, the newest event time, and two flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.base import HOLD, KindParams, Reading, Verdict, WarningModel, pickled_by_position
from models.durations import Duration, format_duration
from models.expr import CelExpr
from models.refdata import ModelEnv
from topics.codec import Event
from topics.schemas import CITY_TZ


class DeadlineParams(KindParams):
    field: str
    """The event field holding the item's due time (a timestamp)."""
    lead: Duration = 0.0
    """How long before the due time the alert fires (0: when it is reached)."""
    open_when: CelExpr | None = None
    """CEL; events for which it is false close the item. Default: every event keeps it open."""


@pickled_by_position
@dataclass(slots=True)
class DeadlineState:
    due: float | None = None
    last_seen: float | None = None
    open: bool = False
    fired: bool = False


class Deadline(WarningModel[DeadlineState]):
    """Breach when an open item reaches its own due time (less ``lead``).

    >>> from topics.codec import Event
    >>> m = Deadline(DeadlineParams(field="due_at", lead="1m"))
    >>> s = m.new_state()
    >>> m.learn_one(s, Event("t", "k", 100.0, {"due_at": 1000.0}))
    >>> m.next_deadline(s)
    940.0
    >>> m.on_deadline(s, 940.0).verdict.value, m.next_deadline(s)
    ('breach', None)
    """

    kind = "deadline"
    Params = DeadlineParams
    evidence_fields = ("due", "lead", "overdue_h", "closed")
    event_expressions = ("open_when",)
    breach_expressions = ("open_when",)
    event_fields = ("field",)
    uses_deadlines = True

    def __init__(self, params: DeadlineParams, env: ModelEnv | None = None) -> None:
        super().__init__(params, env)
        self.open_when = self.maybe_expression(params.open_when)

    def new_state(self) -> DeadlineState:
        return DeadlineState()

    def _is_open(self, event: Event) -> bool:
        return self.open_when is None or self.open_when.evaluate(event.data) is True

    def _due(self, state: DeadlineState, event: Event) -> float | None:
        due = _epoch(event.data.get(self.params.field))
        return state.due if due is None else due

    def _evidence(self, due: float, at: float) -> dict[str, Any]:
        return {"due": datetime.fromtimestamp(due, CITY_TZ).isoformat(timespec="seconds"),
                "lead": format_duration(self.params.lead),
                "overdue_h": round((at - due) / 3600.0, 1)}

    def score_one(self, state: DeadlineState, event: Event) -> Reading:
        if state.last_seen is not None and event.ts < state.last_seen:
            return HOLD
        if not self._is_open(event):
            return Reading(Verdict.CLEAR, {"closed": True})
        due = self._due(state, event)
        if due is None:
            return HOLD
        if event.ts >= due - self.params.lead:
            return Reading(Verdict.BREACH, self._evidence(due, event.ts))
        return Reading(Verdict.CLEAR, self._evidence(due, event.ts))

    def learn_one(self, state: DeadlineState, event: Event) -> None:
        if state.last_seen is not None and event.ts < state.last_seen:
            return
        state.last_seen = event.ts
        state.open = self._is_open(event)
        state.due = self._due(state, event) if state.open else None
        state.fired = state.due is not None and event.ts >= state.due - self.params.lead

    def next_deadline(self, state: DeadlineState) -> float | None:
        if not state.open or state.fired or state.due is None:
            return None
        return state.due - self.params.lead

    def on_deadline(self, state: DeadlineState, at: float) -> Reading:
        limit = self.next_deadline(state)
        if limit is None or at < limit:
            return HOLD
        state.fired = True
        assert state.due is not None
        return Reading(Verdict.BREACH, self._evidence(state.due, limit), at=limit)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "field": self.params.field,
                "lead": format_duration(self.params.lead),
                "open_when": self.open_when.source if self.open_when else "every event"}


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CITY_TZ)
    return moment.timestamp()
