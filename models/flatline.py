"""flatline: a sensor stuck on one value — the same reading again and again.

A *run* is the key's latest readings of ``field`` that all lie within ``tolerance`` of each
other (highest − lowest ≤ ``tolerance``, give or take a relative 1e-9 of float rounding; with
the default 0 they are identical). The key breaches while the run has ``count`` readings
and/or spans ``duration`` from its first reading to the current one (when both are given, both
must be met); any other reading is CLEAR — in particular the first one outside the run, which
starts a new run and resolves a firing alert.
Time alone never changes the verdict: a silent sensor is the absence kind's business.

Readings must come in event-time order: one older than the newest reading is ``late()`` and not
used (a run cannot be told apart from its order). Readings with the same time count in the
order they arrive. Events without the field (``UNDECIDED``, counted) or with a non-number in it
(HOLD) say nothing and neither break nor extend the run.

State per key: five numbers (run start, length, lowest and highest value, newest time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_validator

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
from models.durations import Duration, format_duration
from topics.codec import Event

_SLACK = 1e-9
"""Relative rounding slack when comparing a spread with ``tolerance``."""


class FlatlineParams(KindParams):
    field: str
    """The numeric event field watched."""
    count: int | None = Field(default=None, ge=2)
    """Breach once the run has this many readings."""
    duration: Duration | None = None
    """Breach once the run spans this long (first to current reading)."""
    tolerance: float = Field(default=0.0, ge=0)
    """Readings whose spread stays within this count as identical."""

    @model_validator(mode="after")
    def _limit_given(self) -> FlatlineParams:
        if self.count is None and self.duration is None:
            raise ValueError("give 'count' (readings in a row), 'duration' (how long), or both")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("'duration' must be positive")
        return self


@pickled_by_position
@dataclass(slots=True)
class FlatlineState:
    since: float | None = None
    """Event time of the run's first reading (None before any reading)."""
    length: int = 0
    low: float = 0.0
    high: float = 0.0
    newest: float | None = None


class Flatline(WarningModel[FlatlineState]):
    """Breach while the latest readings of ``field`` have not moved for ``count``/``duration``.

    >>> from topics.codec import Event
    >>> m = Flatline(FlatlineParams(field="level_pct", count=3))
    >>> s = m.new_state()
    >>> out = []
    >>> for t, level in [(0, 61.0), (60, 62.4), (120, 62.4), (180, 62.4), (240, 62.4),
    ...                  (300, None), (360, 62.5)]:
    ...     ev = Event("t", "k", t, {"level_pct": level})
    ...     out.append(m.score_one(s, ev).verdict.value); m.learn_one(s, ev)
    >>> out
    ['clear', 'clear', 'clear', 'breach', 'breach', 'hold', 'clear']
    >>> m.score_one(s, Event("t", "k", 200, {"level_pct": 62.5})).evidence
    {'late_by_s': 160.0}
    """

    kind = "flatline"
    Params = FlatlineParams
    evidence_fields = ("value", "field", "readings", "since", "stuck_s", "stuck_min", "low",
                       "high", "tolerance")
    event_fields = ("field",)
    event_expressions = ()

    def new_state(self) -> FlatlineState:
        return FlatlineState()

    def _value(self, event: Event) -> float | None:
        value = event.data.get(self.params.field)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)

    def _run_after(self, state: FlatlineState, ts: float, value: float
                   ) -> tuple[float, int, float, float]:
        """(since, length, low, high) of the run once this reading is added."""
        if state.since is not None:
            low, high = min(state.low, value), max(state.high, value)
            slack = _SLACK * max(1.0, abs(low), abs(high))  # 62.5 - 62.4 is 0.1000000000000014
            if high - low <= self.params.tolerance + slack:
                return state.since, state.length + 1, low, high
        return ts, 1, value, value

    def score_one(self, state: FlatlineState, event: Event) -> Reading:
        value = self._value(event)
        if value is None:
            return UNDECIDED if event.data.get(self.params.field) is None else HOLD
        if state.newest is not None and event.ts < state.newest:
            return late(float(state.newest - event.ts))
        since, length, low, high = self._run_after(state, event.ts, value)
        p = self.params
        span = event.ts - since
        stuck = ((p.count is None or length >= p.count)
                 and (p.duration is None or span >= p.duration))
        evidence = {"value": value, "readings": length, "since": since, "stuck_s": span,
                    "stuck_min": span / 60, "field": p.field}
        if p.tolerance:
            evidence |= {"low": low, "high": high, "tolerance": p.tolerance}
        return Reading(Verdict.BREACH if stuck else Verdict.CLEAR, evidence)

    def learn_one(self, state: FlatlineState, event: Event) -> None:
        value = self._value(event)
        if value is None or (state.newest is not None and event.ts < state.newest):
            return
        state.since, state.length, state.low, state.high = self._run_after(state, event.ts, value)
        state.newest = event.ts

    def describe(self) -> dict[str, Any]:
        p = self.params
        out: dict[str, Any] = {"kind": self.kind, "field": p.field, "tolerance": p.tolerance}
        if p.count is not None:
            out["count"] = p.count
        if p.duration is not None:
            out["duration"] = format_duration(p.duration)
        return out
