"""rate: how fast a numeric field changes — a jump, a fall, a rise within a stretch of time.

Each reading of ``field`` is compared with the key's earlier readings of the last ``within``
(event time; a reading exactly ``within`` older counts). The condition is CEL over:

- ``value``: this reading; ``previous``: the latest earlier reading;
- ``delta``: ``value`` − the oldest earlier reading;
- ``rise``: ``value`` − the lowest earlier reading (negative when below all of them);
- ``fall``: the highest earlier reading − ``value`` (negative when above all of them);
- ``rate_per_s``, ``rate_per_min``: ``delta`` over the time since the oldest earlier reading;
- ``pct_change``: ``delta`` / abs(oldest) × 100 (null when the oldest is 0);
- ``elapsed_s``: seconds since the oldest earlier reading; ``earlier``: how many there are.

With no earlier reading within ``within`` all but ``value`` are null, so the condition is
undecided and the reading says nothing (HOLD) unless the CEL tests for it (``previous == null``).
An event without ``field`` says nothing either (``UNDECIDED``, a HOLD the engine counts).

Readings may arrive out of order by up to ``lateness``: such a reading is judged against the
readings before it in event time and is then inserted in order, so later readings see it
(readings already judged are not judged again). A reading older than the newest minus
``lateness`` is ``late()`` and not used.

State per key: the (time, value) pairs of the last ``within`` + ``lateness``; it grows with
the reading rate times that span — 1 Hz speed over 3 s keeps about four pairs.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from models.base import (
    HOLD,
    UNDECIDED,
    KindParams,
    Reading,
    Verdict,
    WarningModel,
    late,
    pickled_by_position,
)
from models.durations import Lateness, PositiveDuration, format_duration
from models.expr import CelExpr
from models.refdata import ModelEnv
from topics.codec import Event

VARIABLES = ("value", "previous", "delta", "rise", "fall", "rate_per_s", "rate_per_min",
             "pct_change", "elapsed_s", "earlier")
"""The names rate conditions are written in."""


class RateParams(KindParams):
    field: str
    """The numeric event field watched."""
    within: PositiveDuration
    """How far back (event time) the earlier readings are taken from."""
    condition: CelExpr
    """CEL over the names in ``VARIABLES``, e.g. ``fall > 30``."""
    clear: CelExpr | None = None
    """CEL over the same; a firing alert resolves only once it is true (band between)."""
    lateness: Lateness = 0.0
    """How far behind the newest reading (event time) a reading may arrive and still be used."""

@pickled_by_position
@dataclass(slots=True)
class RateState:
    readings: list[tuple[float, float]] = field(default_factory=list)
    """(event time, value) pairs in time order; the last is the newest reading."""


class Rate(WarningModel[RateState]):
    """Breach when ``condition`` holds over the change since the readings of the last ``within``.

    >>> from topics.codec import Event
    >>> m = Rate(RateParams(field="speed_kmh", within="3s", condition="fall > 30",
    ...                     clear="fall <= 10"))
    >>> s = m.new_state()
    >>> out = []
    >>> for t, kmh in [(0, 80.0), (1, 78.0), (2, 60.0), (3, 47.0), (4, 45.0), (5, 45.0),
    ...                (6, 44.0)]:
    ...     ev = Event("t", "k", t, {"speed_kmh": kmh})
    ...     out.append(m.score_one(s, ev).verdict.value); m.learn_one(s, ev)
    >>> out
    ['hold', 'clear', 'band', 'breach', 'breach', 'band', 'clear']
    >>> m.score_one(s, Event("t", "k", 2, {"speed_kmh": 0.0})).evidence
    {'late_by_s': 4.0}
    """

    kind = "rate"
    Params = RateParams
    evidence_fields = ("value", "field", "within", "previous", "earlier", "delta", "elapsed_s",
                       "rise", "fall", "pct_change", "rate_per_min", "rate_per_s")
    event_fields = ("field",)
    event_expressions = ()  # the conditions are over derived values, checked in field_problems

    def __init__(self, params: RateParams, env: ModelEnv | None = None) -> None:
        super().__init__(params, env)
        self.condition = self.expression(params.condition)
        self.clear = self.maybe_expression(params.clear)
        self._about = {"field": params.field, "within": format_duration(params.within)}
        """What every reading's evidence says of the rule itself (written once, not per event)."""

    @classmethod
    def field_problems(cls, params: KindParams, sources: list[str],
                       fields_of: Callable[[str], set[str]], env: ModelEnv
                       ) -> list[tuple[tuple[str | int, ...], str]]:
        """The conditions may only name the derived values (a typo would hold forever)."""
        try:
            model = cls(params, env)  # type: ignore[arg-type]
        except ValueError as exc:  # a macro that does not expand, CEL that does not compile
            return [(("condition",), str(exc))]
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for name, expr in (("condition", model.condition), ("clear", model.clear)):
            unknown = [v for v in (expr.variables if expr else ()) if v not in VARIABLES]
            if unknown:
                problems.append(((name,), f"unknown name {', '.join(map(repr, unknown))} in "
                                          f"{name}; a rate condition uses {', '.join(VARIABLES)}"))
        return problems

    def new_state(self) -> RateState:
        return RateState()

    def _value(self, event: Event) -> float | None:
        value = event.data.get(self.params.field)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)

    def _too_late(self, state: RateState, ts: float) -> bool:
        return bool(state.readings) and ts < state.readings[-1][0] - self.params.lateness

    def score_one(self, state: RateState, event: Event) -> Reading:
        value = self._value(event)
        if value is None:
            return UNDECIDED if event.data.get(self.params.field) is None else HOLD
        if self._too_late(state, event.ts):
            return late(float(state.readings[-1][0] - event.ts))
        values = self._variables(state, event.ts, value)
        held = self.condition.evaluate(values)
        evidence = values | self._about
        if held is True:
            return Reading(Verdict.BREACH, evidence)
        if self.clear is None:
            return Reading(Verdict.CLEAR, evidence) if held is False else HOLD
        cleared = self.clear.evaluate(values)
        if cleared is True:
            return Reading(Verdict.CLEAR, evidence)
        if held is False or cleared is False:
            return Reading(Verdict.BAND, evidence)
        return HOLD

    def _variables(self, state: RateState, ts: float, value: float) -> dict[str, Any]:
        readings = state.readings
        lo = bisect_left(readings, ts - self.params.within, key=_time)
        hi = bisect_right(readings, ts, key=_time)
        out: dict[str, Any] = dict.fromkeys(VARIABLES)
        out["value"] = value
        out["earlier"] = hi - lo
        if hi == lo:
            return out
        first_ts, oldest = readings[lo]
        earlier = [v for _, v in readings[lo:hi]]
        delta = value - oldest
        elapsed = ts - first_ts
        rate = delta / elapsed if elapsed > 0 else None
        out |= {"previous": earlier[-1], "delta": delta,
                "rise": value - min(earlier), "fall": max(earlier) - value,
                "rate_per_s": rate, "rate_per_min": None if rate is None else rate * 60,
                "pct_change": delta / abs(oldest) * 100 if oldest != 0 else None,
                "elapsed_s": elapsed}
        return out

    def learn_one(self, state: RateState, event: Event) -> None:
        value = self._value(event)
        if value is None or self._too_late(state, event.ts):
            return
        readings = state.readings
        if readings and event.ts < readings[-1][0]:
            insort(readings, (event.ts, value), key=_time)
        else:
            readings.append((event.ts, value))
        # A reading up to `lateness` behind the newest still needs `within` before it.
        horizon = readings[-1][0] - self.params.lateness - self.params.within
        drop = bisect_left(readings, horizon, key=_time)
        if drop:
            del readings[:drop]

    def describe(self) -> dict[str, Any]:
        p = self.params
        return {"kind": self.kind, "field": p.field, "within": format_duration(p.within),
                "condition": self.condition.source,
                "clear": self.clear.source if self.clear else f"not ({self.condition.source})"}


_time = itemgetter(0)
"""A reading's time (in C: bisect calls it a few times per event)."""
