"""sequence: "A followed by B within T", or "A not followed by B within T".

``first`` and ``then`` are CEL over the event's fields: an event for which ``first`` is true is an
A, one for which ``then`` is true a B (one event may be both; it never answers itself). A B
*answers* every A of the key with ``A.ts <= B.ts <= A.ts + within``: both bounds inclusive, so a B
exactly ``within`` after its A is in time, one second later is not, and a B at the very instant of
its A answers it whichever of the two arrives first.

``followed``: a B that answers at least one A breaches (evidence: the earliest A it answers and the
gap); the key's next event that completes no sequence clears, so each occurrence is one episode.
A late A that meets a B which arrived before it completes the sequence on arrival (the breach
bears the A's time, as every reading bears its event's; evidence has the B's); if that B already
completed one, the late A is no new occurrence and clears like any other event.

``not_followed``: each unanswered A has a deadline at ``A.ts + within + lateness``; when the clock
passes it with no B, ``on_deadline`` breaches (evidence: the A and how long it waited) — with no
further input. A B in time answers the A and cancels its deadline (no alert). A second A before
the deadline does not move it: the deadline counts from the first unanswered A, and one B answers
both if it is within ``within`` of each; a later A that goes unanswered too breaches at its own
deadline, which keeps a still-firing alert firing. A B at or after the last unanswered A clears.
A B processed before the deadline fired but too late for its A (a lagging clock) still counts:
the alert fires at the deadline and clears at that B, or at the deadline if the B came in between.

``lateness``: an event older than the key's newest event minus ``lateness`` is ``late()`` and
unused (exactly ``lateness`` old is still used); within it, events count as if they had come in
time order. In ``not_followed`` the deadline waits ``lateness`` longer, so a B up to ``lateness``
late still prevents the alert.

State per key: the times of As still waiting for a B and of Bs not older than ``lateness`` (in
``not_followed`` also Bs since the oldest waiting A) — a few numbers when events come in order;
it grows with the event rate times ``within`` + ``lateness``.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from typing import Any, Literal

from models.base import HOLD, KindParams, Reading, Verdict, WarningModel, late, pickled_by_position
from models.durations import Lateness, PositiveDuration, format_duration
from models.expr import CelExpr
from models.refdata import ModelEnv
from topics.codec import Event


class SequenceParams(KindParams):
    first: CelExpr
    """CEL over the event's fields: the event is an A (what starts the sequence)."""
    then: CelExpr
    """CEL over the event's fields: the event is a B (what completes or answers it)."""
    within: PositiveDuration
    """How long after an A its B may come (inclusive)."""
    mode: Literal["followed", "not_followed"]
    """``followed``: breach when B follows A in time; ``not_followed``: when it does not."""
    lateness: Lateness = 0.0
    """How late (event time) an event may arrive and still be used."""

@pickled_by_position
@dataclass(slots=True)
class SequenceState:
    newest: float | None = None
    """Time of the key's newest event (late events are judged against it)."""
    waiting: list[float] = field(default_factory=list)
    """Times of As no B has answered yet, in order."""
    answers: list[tuple[float, bool]] = field(default_factory=list)
    """Recent Bs, in order: (time, whether it completed a sequence)."""
    overdue: float | None = None
    """``not_followed``: the latest A whose deadline passed unanswered (the alert is breaching)."""
    owed: tuple[float, float] | None = None
    """``not_followed``: (when, B time) of a clear owed to a B that came before the deadline
    fired but after its A's window."""


class Sequence(WarningModel[SequenceState]):
    """A followed (or not followed) by B within ``within``, per key.

    >>> from topics.codec import Event
    >>> def ev(ts, kind):
    ...     return Event("t", "B1", ts, {"kind": kind})
    >>> m = Sequence(SequenceParams(first='kind == "alarm"', then='kind == "confirm"',
    ...                             within="3m", mode="not_followed"))
    >>> s = m.new_state()
    >>> m.learn_one(s, ev(0.0, "alarm"))
    >>> m.next_deadline(s)
    180.0
    >>> r = m.on_deadline(s, 180.0); r.verdict.value, r.evidence
    ('breach', {'first_at': 0.0, 'waited_s': 180.0, 'within': '3m'})
    >>> m.score_one(s, ev(200.0, "confirm")).verdict.value, m.next_deadline(s)
    ('clear', None)
    >>> m = Sequence(SequenceParams(first='kind == "alarm"', then='kind == "alarm"',
    ...                             within="5m", mode="followed"))
    >>> s = m.new_state()
    >>> out = []
    >>> for t in (0.0, 240.0, 900.0):
    ...     out.append(m.score_one(s, ev(t, "alarm")).verdict.value); m.learn_one(s, ev(t, "alarm"))
    >>> out
    ['clear', 'breach', 'clear']
    """

    kind = "sequence"
    Params = SequenceParams
    evidence_fields = ("first_at", "then_at", "gap_s", "waited_s", "within")
    event_expressions = ("first", "then")
    breach_expressions = ("first", "then")
    uses_deadlines = True
    deadlines_when_idle = True  # not_followed fires from the clock alone; followed has none

    def __init__(self, params: SequenceParams, env: ModelEnv | None = None) -> None:
        super().__init__(params, env)
        self.first = self.expression(params.first)
        self.then = self.expression(params.then)
        self.followed = params.mode == "followed"
        self._within = format_duration(params.within)

    def new_state(self) -> SequenceState:
        return SequenceState()

    def score_one(self, state: SequenceState, event: Event) -> Reading:
        # The same fold as learn_one, on a copy: the two can never disagree.
        copy = SequenceState(state.newest, list(state.waiting), list(state.answers),
                             state.overdue, state.owed)
        return self._fold(copy, event)

    def learn_one(self, state: SequenceState, event: Event) -> None:
        self._fold(state, event)

    def _fold(self, s: SequenceState, event: Event) -> Reading:
        is_a, is_b = self.first.evaluate(event.data), self.then.evaluate(event.data)
        if is_a is None and is_b is None:
            return HOLD  # neither condition can be judged: the event lacks their fields
        p, ts = self.params, event.ts
        if s.newest is not None and ts < s.newest - p.lateness:
            return late(s.newest - p.lateness - ts)
        s.newest = ts if s.newest is None else max(s.newest, ts)
        reading = Reading(Verdict.CLEAR) if self.followed else HOLD
        answered: list[float] = []
        if is_b is True:
            answered = [a for a in s.waiting if a <= ts <= a + p.within]
            if answered:
                s.waiting = [a for a in s.waiting if not a <= ts <= a + p.within]
                if self.followed:
                    reading = self._completed(answered[0], ts)
            if not self.followed and s.overdue is not None and ts >= s.overdue:
                reading = Reading(Verdict.CLEAR, {"first_at": s.overdue, "then_at": ts,
                                                  "gap_s": ts - s.overdue})
                s.overdue = s.owed = None
        if is_a is True:
            match = next((i for i, (b, _) in enumerate(s.answers) if ts <= b <= ts + p.within),
                         None)
            if match is None:
                insort(s.waiting, ts)
            elif self.followed and not s.answers[match][1]:
                b = s.answers[match][0]
                s.answers[match] = (b, True)
                if reading.verdict is not Verdict.BREACH:
                    reading = self._completed(ts, b)
        if is_b is True:
            insort(s.answers, (ts, bool(answered)))
        self._forget(s)
        return reading

    def _completed(self, a: float, b: float) -> Reading:
        return Reading(Verdict.BREACH, {"first_at": a, "then_at": b, "gap_s": b - a,
                                        "within": self._within})

    def _forget(self, s: SequenceState) -> None:
        """Drop what no event that is not late can still use."""
        assert s.newest is not None
        horizon = s.newest - self.params.lateness
        if self.followed:
            s.waiting = [a for a in s.waiting if a + self.params.within >= horizon]
        elif s.waiting:
            horizon = min(horizon, s.waiting[0])  # a B after a waiting A may be owed a clear
        s.answers = [b for b in s.answers if b[0] >= horizon]

    def next_deadline(self, state: SequenceState) -> float | None:
        if self.followed:
            return None
        times = [state.owed[0]] if state.owed is not None else []
        if state.waiting:
            times.append(state.waiting[0] + self.params.within + self.params.lateness)
        return min(times) if times else None

    def on_deadline(self, state: SequenceState, at: float) -> Reading:
        if self.followed:
            return HOLD
        if state.owed is not None and state.owed[0] <= at:
            b = state.owed[1]
            assert state.overdue is not None
            reading = Reading(Verdict.CLEAR, {"first_at": state.overdue, "then_at": b,
                                              "gap_s": b - state.overdue})
            state.overdue = state.owed = None
            return reading
        wait = self.params.within + self.params.lateness
        due = [a for a in state.waiting if a + wait <= at]
        if not due:
            return HOLD
        state.waiting = state.waiting[len(due):]
        state.overdue = due[-1]
        later = next((b for b, _ in state.answers if b >= due[-1]), None)
        state.owed = None if later is None else (max(at, later), later)
        if state.newest is not None:
            self._forget(state)
        return Reading(Verdict.BREACH, {"first_at": due[0], "waited_s": at - due[0],
                                        "within": self._within})

    def describe(self) -> dict[str, Any]:
        p = self.params
        out = {"kind": self.kind, "mode": p.mode, "first": self.first.source,
               "then": self.then.source, "within": self._within}
        if p.lateness:
            out["lateness"] = format_duration(p.lateness)
        return out
