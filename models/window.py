"""window: an aggregate over each key's recent events (count, sum, avg, min, max, distinct).

Windows are in event time. ``sliding`` looks back ``size`` from each event; ``tumbling`` uses
fixed buckets of ``size``; ``hopping`` uses buckets of ``size`` starting every ``hop`` and breaches
when any bucket containing the event does. The condition is CEL over ``value`` (the aggregate)
and ``count`` (events in the window).

A sliding ``count`` may count only reports that belong together (``models.report_clusters``):
``near_m`` makes ``value`` the most reports of the window within that many metres of one of them
(by ``lat_field``/``lon_field``), ``group_by`` the most with one value of that field (``group``
in the evidence names it); with both, the most of one group close together.

An event older than the key's newest (it came through another partition) is counted where it
belongs: in its own window and in the windows that end at the later events.

A firing window alert is judged again when time alone changes the window (its oldest entry
leaves, or its bucket closes), so it resolves when the events stop, not only at the next event.

State per key: the (time, value) pairs still inside the window plus ``lateness``; it grows with
the event rate times the window size, so a one-hour window over 1 Hz data keeps 3,600 pairs.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, model_validator

from models.base import KindParams, Reading, Verdict, WarningModel, pickled_by_position
from models.durations import Duration, Lateness, PositiveDuration, format_duration
from models.expr import CelExpr
from models.refdata import ModelEnv
from models.report_clusters import ReportClusters
from topics.codec import Event

Aggregate = Literal["count", "sum", "avg", "min", "max", "distinct"]


class WindowParams(KindParams):
    aggregate: Aggregate
    field: str | None = None
    """The event field aggregated; not needed for ``count``."""
    size: PositiveDuration
    window: Literal["sliding", "tumbling", "hopping"] = "sliding"
    hop: Duration | None = None
    condition: CelExpr
    """CEL over ``value`` and ``count``, e.g. ``value >= 3``."""
    clear: CelExpr | None = None
    lateness: Lateness = 0.0
    """How late (event time) an event may arrive and still be counted."""
    near_m: float | None = Field(default=None, gt=0)
    """Count only reports within this many metres of one another (sliding ``count`` only)."""
    group_by: str | None = None
    """Count each value of this field apart; ``value`` is the largest group's count."""
    lat_field: str = "lat"
    lon_field: str = "lon"

    @model_validator(mode="after")
    def _consistent(self) -> WindowParams:
        if self.aggregate != "count" and not self.field:
            raise ValueError(f"aggregate {self.aggregate!r} needs 'field'")
        clustered = [n for n in ("near_m", "group_by") if getattr(self, n) is not None]
        if clustered and (self.aggregate != "count" or self.window != "sliding"):
            raise ValueError(f"'{clustered[0]}' counts reports that belong together: it needs "
                             "'aggregate: count' and a sliding window")
        if self.window == "hopping" and not self.hop:
            raise ValueError("a hopping window needs 'hop'")
        return self


@pickled_by_position
@dataclass(slots=True)
class WindowState:
    entries: list[tuple[float, Any]] = field(default_factory=list)
    """(event time, value) pairs, in time order."""


class Window(WarningModel[WindowState]):
    """Aggregate per key over a time window, then test the aggregate.

    >>> from topics.codec import Event
    >>> m = Window(WindowParams(aggregate="count", size="10m", condition="value >= 3"))
    >>> s = m.new_state()
    >>> out = []
    >>> for t in (0, 60, 120, 900):
    ...     ev = Event("t", "k", t, {})
    ...     out.append(m.score_one(s, ev).verdict.value); m.learn_one(s, ev)
    >>> out
    ['clear', 'clear', 'breach', 'clear']
    """

    kind = "window"
    Params = WindowParams
    evidence_fields = ("value", "count", "window", "aggregate", "field", "size", "near_m",
                       "group")
    event_fields = ("field", "group_by")
    uses_deadlines = True
    deadlines_when_idle = False

    def __init__(self, params: WindowParams, env: ModelEnv | None = None) -> None:
        super().__init__(params, env)
        self.condition = self.expression(params.condition)
        self.clear = self.maybe_expression(params.clear)
        self._aggregate = _AGGREGATES[params.aggregate]
        self._clusters = (None if params.near_m is None and params.group_by is None
                          else ReportClusters(params.near_m, params.group_by, params.lat_field,
                                              params.lon_field))

    @classmethod
    def field_problems(cls, params: KindParams, sources: list[str],
                       fields_of: Callable[[str], set[str]], env: ModelEnv
                       ) -> list[tuple[tuple[str | int, ...], str]]:
        assert isinstance(params, WindowParams)
        if params.near_m is None:
            return []
        known = set().union(*(fields_of(t) for t in sources))
        return [((name,), f"near_m places reports by {name} {getattr(params, name)!r}, "
                          f"which is not a field of {', '.join(sources)}")
                for name in ("lat_field", "lon_field") if getattr(params, name) not in known]

    def new_state(self) -> WindowState:
        return WindowState()

    def _value(self, event: Event) -> Any:
        if self._clusters is not None:
            return self._clusters.report_of(event.data)
        return 1 if self.params.field is None else event.data.get(self.params.field)

    def _buckets(self, ts: float) -> list[tuple[float, float]]:
        p = self.params
        if p.window == "sliding":
            return [(ts - p.size, ts)]
        step = p.size if p.window == "tumbling" else p.hop
        assert step is not None
        first = (ts - p.size) // step * step + step
        starts = []
        start = first
        while start <= ts:
            if start + p.size > ts:
                starts.append(start)
            start += step
        return [(s, s + p.size) for s in starts]

    def score_one(self, state: WindowState, event: Event) -> Reading:
        value = self._value(event)
        if value is None:
            return Reading(Verdict.HOLD)
        reading = self._judge(state, event.ts, value)
        if reading.verdict is Verdict.BREACH or not state.entries:
            return reading
        # An event older than the newest one (it came through another partition) also belongs
        # to the windows that end at the later events: judge those too, earliest first.
        for later in sorted({t for t, _ in state.entries
                             if event.ts < t < event.ts + self.params.size}):
            again = self._judge(state, later, value, also_at=event.ts)
            if again.verdict is Verdict.BREACH:
                return Reading(Verdict.BREACH, again.evidence, at=later)
        return reading

    def _judge(self, state: WindowState, ts: float, value: Any = None,
               also_at: float | None = None) -> Reading:
        """The reading of the window(s) at ``ts``, counting ``value`` (an event at ``also_at``,
        by default ``ts``) when one is given."""
        at = ts if also_at is None else also_at
        # With hopping windows the time falls in several; the first that meets the condition
        # is the evidence.
        evidence: dict[str, Any] = {}
        held: Any = None
        for lo, hi in self._buckets(ts):
            values = [v for t, v in state.entries
                      if _inside(t, lo, hi, self.params.window) and t <= ts]
            if value is not None and _inside(at, lo, hi, self.params.window):
                values.append(value)
            agg: dict[str, Any] = {"value": None, "count": len(values)}
            if values and self._clusters is not None:
                agg["value"], group = self._clusters.largest(values)
                if self.params.group_by is not None:
                    agg["group"] = group
            elif values:
                agg["value"] = self._aggregate(values)
            held = self.condition.evaluate(agg)
            evidence = agg | {"window": [lo, hi]}
            if held is True:
                break
        evidence |= {"aggregate": self.params.aggregate, "field": self.params.field,
                     "size": format_duration(self.params.size)}
        if self.params.near_m is not None:
            evidence["near_m"] = self.params.near_m
        if self.params.group_by is not None:
            evidence.setdefault("group", None)
        if held is True:
            return Reading(Verdict.BREACH, evidence)
        if self.clear is None or self.clear.evaluate(evidence) is True:
            return Reading(Verdict.CLEAR, evidence)
        return Reading(Verdict.BAND, evidence)

    def next_deadline(self, state: WindowState) -> float | None:
        """When the window changes by time alone: its oldest entry leaves (sliding) or the
        bucket of the newest one closes (tumbling, hopping)."""
        if not state.entries:
            return None
        p = self.params
        if p.window == "sliding":
            return state.entries[0][0] + p.size
        return max(hi for _, hi in self._buckets(state.entries[-1][0]))

    def on_deadline(self, state: WindowState, at: float) -> Reading:
        # Sliding windows exclude their lower bound, so at the deadline the oldest entry is out;
        # a bucket is judged just after it closes.
        when = at if self.params.window == "sliding" else at + 1e-9
        reading = self._judge(state, when)
        self._forget_before(state, when - self.params.size - self.params.lateness)
        return reading

    def learn_one(self, state: WindowState, event: Event) -> None:
        value = self._value(event)
        if value is None:
            return
        entries = state.entries
        if entries and event.ts < entries[-1][0]:
            insort(entries, (event.ts, value), key=lambda e: e[0])
        else:
            entries.append((event.ts, value))
        self._forget_before(state, entries[-1][0] - self.params.size - self.params.lateness)

    @staticmethod
    def _forget_before(state: WindowState, horizon: float) -> None:
        entries = state.entries
        drop = 0
        while drop < len(entries) and entries[drop][0] <= horizon:
            drop += 1
        if drop:
            del entries[:drop]

    def describe(self) -> dict[str, Any]:
        p = self.params
        return {"kind": self.kind, "aggregate": p.aggregate, "field": p.field,
                "window": p.window, "size": format_duration(p.size),
                "condition": self.condition.source} | {
                    name: getattr(p, name) for name in ("near_m", "group_by")
                    if getattr(p, name) is not None}


def _inside(t: float, lo: float, hi: float, window: str) -> bool:
    # Sliding windows look back (lo, hi]; fixed buckets are [lo, hi).
    return lo < t <= hi if window == "sliding" else lo <= t < hi


def _avg(values: list[Any]) -> float:
    return sum(values) / len(values)


_AGGREGATES = {
    "count": len,
    "sum": sum,
    "avg": _avg,
    "min": min,
    "max": max,
    "distinct": lambda values: len(set(values)),
}
