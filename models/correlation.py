"""correlation: signals from two or more streams about one key (a grid, an entity) within T.

Each *signal* names a topic and a condition on its events (``when``); the rule's ``key`` (e.g.
``grid_id``) must be a field of every topic, and the engine routes all of them to one stream
keyed by it, so the signals of one grid meet in one state even across partitions and workers.
The key breaches when at least ``require`` different signals (default: all) were seen within
``within`` of each other; it clears when they no longer are — at an event, or when time alone
ages the oldest signal out.

State per key: the time and the condition's values of the latest event of each signal, so it is
bounded by the number of signals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.base import HOLD, KindParams, Reading, Verdict, WarningModel, late, pickled_by_position
from models.durations import Lateness, PositiveDuration, format_duration
from models.expr import CelExpr, Expression, ExpressionError
from models.refdata import ModelEnv
from topics.codec import Event


class Signal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str
    when: CelExpr | None = None
    """CEL over that topic's events; default: every event of the topic is the signal."""


class CorrelationParams(KindParams):
    signals: dict[str, Signal] = Field(min_length=2)
    within: PositiveDuration
    require: int | None = Field(default=None, ge=2)
    """How many different signals must meet; default: all of them."""
    lateness: Lateness | None = None
    """How late an event may come and still count; default ``within``: signals of different
    topics reach the engine in no particular order, and any signal inside the window matters."""

    @model_validator(mode="after")
    def _enough_signals(self) -> CorrelationParams:
        if self.require is not None and self.require > len(self.signals):
            raise ValueError(f"require is {self.require} but only {len(self.signals)} signals "
                             "are defined")
        return self


@pickled_by_position
@dataclass(slots=True)
class CorrelationState:
    seen: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    """signal -> (event time, the values its condition looked at) of its latest event."""
    newest: float | None = None


class Correlation(WarningModel[CorrelationState]):
    """Breach when enough different signals meet within ``within``.

    >>> from topics.codec import Event
    >>> m = Correlation(CorrelationParams(within="1h", signals={
    ...     "smell": {"topic": "tickets", "when": 'category == "gas_smell"'},
    ...     "drop": {"topic": "sensors", "when": "value < 200.0"}}))
    >>> s = m.new_state()
    >>> def feed(topic, ts, **data):
    ...     ev = Event(topic, "G1", ts, data)
    ...     reading = m.score_one(s, ev); m.learn_one(s, ev); return reading.verdict.value
    >>> feed("tickets", 0, category="gas_smell"), feed("sensors", 600, value=150.0)
    ('clear', 'breach')
    >>> m.next_deadline(s), m.on_deadline(s, 3600).verdict.value
    (3600.0, 'clear')
    """

    kind = "correlation"
    Params = CorrelationParams
    evidence_fields = ("signals", "met", "require", "within")
    uses_deadlines = True
    deadlines_when_idle = False

    def __init__(self, params: CorrelationParams, env: ModelEnv | None = None) -> None:
        super().__init__(params, env)
        self.require = params.require or len(params.signals)
        self.lateness = params.within if params.lateness is None else params.lateness
        self._by_topic: dict[str, list[tuple[str, Expression | None]]] = {}
        for name, signal in params.signals.items():
            self._by_topic.setdefault(signal.topic, []).append(
                (name, self.maybe_expression(signal.when)))
        self._within = format_duration(params.within)
        self._matched: tuple[Event | None, dict[str, dict[str, Any]]] = (None, {})
        """The signals the last event matched: ``learn_one`` follows ``score_one`` with the
        same event, and matching is most of this kind's cost."""

    @classmethod
    def breach_conditions(cls, params: CorrelationParams  # type: ignore[override]
                          ) -> list[tuple[tuple[str | int, ...], str, list[str] | None]]:
        return [(("signals", name, "when"), signal.when, [signal.topic])
                for name, signal in params.signals.items() if signal.when is not None]

    @classmethod
    def field_problems(cls, params: CorrelationParams, sources: list[str],  # type: ignore[override]
                       fields_of: Callable[[str], set[str]], env: ModelEnv
                       ) -> list[tuple[tuple[str | int, ...], str]]:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for name, signal in params.signals.items():
            loc: tuple[str | int, ...] = ("signals", name)
            if signal.topic not in sources:
                problems.append(((*loc, "topic"), f"signals.{name}.topic: {signal.topic!r} is "
                                                  f"not one of the rule's source topics"))
                continue
            if signal.when is None:
                continue
            known = fields_of(signal.topic)
            try:
                names = Expression(signal.when, env.constants, env.macros).variables
            except ExpressionError as exc:
                problems.append(((*loc, "when"), f"signals.{name}.when: {exc}"))
                continue
            unknown = [n for n in names if n not in known]
            if unknown:
                problems.append(((*loc, "when"), f"unknown field {', '.join(map(repr, unknown))}"
                                                 f" in signals.{name}.when; {signal.topic} has: "
                                                 f"{', '.join(sorted(known))}"))
        return problems

    def new_state(self) -> CorrelationState:
        return CorrelationState()

    def _matches(self, event: Event) -> dict[str, dict[str, Any]]:
        last, matched = self._matched
        if last is event:
            return matched
        matched = {}
        for name, when in self._by_topic.get(event.topic, ()):
            if when is None:
                matched[name] = {}
            elif when.evaluate(event.data) is True:
                matched[name] = {v: event.data.get(v) for v in when.variables}
        self._matched = (event, matched)
        return matched

    def _judge(self, seen: dict[str, tuple[float, dict[str, Any]]], at: float) -> Reading:
        recent = {n: (ts, values) for n, (ts, values) in seen.items()
                  if at - self.params.within < ts <= at}
        evidence = {"signals": {n: {"at": ts, **values} for n, (ts, values) in recent.items()},
                    "met": len(recent), "require": self.require, "within": self._within}
        verdict = Verdict.BREACH if len(recent) >= self.require else Verdict.CLEAR
        return Reading(verdict, evidence, at=at)

    def score_one(self, state: CorrelationState, event: Event) -> Reading:
        if state.newest is not None and event.ts < state.newest - self.lateness:
            return late(state.newest - event.ts)
        matched = self._matches(event)
        if not matched:
            return HOLD
        seen = dict(state.seen)
        for name, values in matched.items():
            if name not in seen or seen[name][0] <= event.ts:
                seen[name] = (event.ts, values)
        at = max(event.ts, state.newest or event.ts)
        reading = self._judge(seen, at)
        reading.at = at
        return reading

    def learn_one(self, state: CorrelationState, event: Event) -> None:
        for name, values in self._matches(event).items():
            if name not in state.seen or state.seen[name][0] <= event.ts:
                state.seen[name] = (event.ts, values)
        state.newest = max(event.ts, state.newest or event.ts)

    def next_deadline(self, state: CorrelationState) -> float | None:
        if not state.seen:
            return None
        return min(ts for ts, _ in state.seen.values()) + self.params.within

    def on_deadline(self, state: CorrelationState, at: float) -> Reading:
        reading = self._judge(state.seen, at)
        state.seen = {n: v for n, v in state.seen.items() if v[0] > at - self.params.within}
        return reading

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "within": format_duration(self.params.within),
                "require": self.require,
                "signals": {n: f"{s.topic}: {s.when or 'any event'}"
                            for n, s in self.params.signals.items()}}
