"""novelty: a value a key has not had for a long time appears, and keeps appearing.

For each key (a grid) the model remembers when it last saw each value of ``field`` (a ticket
category). A value is *new* when the key has not had it for ``unseen_for`` (30 days): from that
first appearance, for ``within`` (a day), its events are counted, and the model BREACHes once
``min_count`` of them have come. The alert names the value and lasts until the last new value
that reached the count has been new for ``within``; the clock resolves it with no further input.

A key is judged only after ``warmup`` of its own history (by default ``unseen_for``): on a fresh
deployment nothing is "unseen for 30 days" until the engine has watched the key that long, so a
shorter warm-up means "unseen since the key was first seen, at least this long ago".

Events of one key may arrive a little out of order (through different partitions): an event of
a new value counts as long as it falls within ``within`` of the value's first appearance.

State per key: the time each value was last seen (values not seen for ``unseen_for`` are
forgotten, they would be new again anyway) and the event times of the values currently new: a
few dozen numbers for a grid's ticket categories.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from models.base import HOLD, KindParams, Reading, Verdict, WarningModel, pickled_by_position
from models.durations import Duration, PositiveDuration, format_duration
from models.refdata import ModelEnv
from topics.codec import Event


class NoveltyParams(KindParams):
    field: str
    """The event field whose values are watched (``category``)."""
    unseen_for: PositiveDuration
    """How long the key must not have had a value for it to count as new."""
    within: PositiveDuration
    """How long a new value stays new (its events are counted) from its first appearance."""
    min_count: int = Field(default=5, ge=1)
    """Events of the new value, within ``within``, that make the breach."""
    warmup: Duration | None = None
    """History of the key needed before any value counts as new (default: ``unseen_for``)."""


@pickled_by_position
@dataclass(slots=True)
class NoveltyState:
    since: float | None = None
    """Time of the key's first event."""
    newest: float | None = None
    last_seen: dict[str, float] = field(default_factory=dict)
    fresh: dict[str, list[float]] = field(default_factory=dict)
    """Values currently new: the times of their events since their first appearance."""


class Novelty(WarningModel[NoveltyState]):
    """Breach when a value unseen for ``unseen_for`` comes ``min_count`` times ``within``.

    >>> from topics.codec import Event
    >>> m = Novelty(NoveltyParams(field="category", unseen_for="30d", within="1d",
    ...                           min_count=3, warmup="1h"))
    >>> s = m.new_state()
    >>> def ticket(ts, category):
    ...     event = Event("t", "G1", ts, {"category": category})
    ...     reading = m.score_one(s, event)
    ...     m.learn_one(s, event)
    ...     return reading.verdict.value, reading.evidence.get("value")
    >>> ticket(0, "road"), ticket(4000, "pests"), ticket(5000, "pests")  # "road" seen first
    (('hold', None), ('clear', 1), ('clear', 2))
    >>> ticket(6000, "pests"), ticket(7000, "road")  # a third pests ticket; road is old news
    (('breach', 3), ('breach', 3))
    >>> m.next_deadline(s), m.on_deadline(s, 4000 + 86400).verdict.value
    (90400.0, 'clear')
    """

    kind = "novelty"
    Params = NoveltyParams
    evidence_fields = ("value", "group", "first_seen", "unseen_for", "within")
    event_fields = ("field",)
    uses_deadlines = True
    deadlines_when_idle = False

    def __init__(self, params: NoveltyParams, env: ModelEnv | None = None) -> None:
        super().__init__(params, env)
        self.warmup = params.unseen_for if params.warmup is None else params.warmup

    def new_state(self) -> NoveltyState:
        return NoveltyState()

    def _value(self, event: Event) -> str | None:
        value = event.data.get(self.params.field)
        return None if value is None or value == "" else str(value)

    def _is_new(self, state: NoveltyState, value: str, ts: float) -> bool:
        if state.since is None or ts - state.since < self.warmup:
            return False
        seen = state.last_seen.get(value)
        return seen is None or ts - seen > self.params.unseen_for

    def _counts_in(self, times: list[float], ts: float) -> bool:
        return times[0] <= ts < times[0] + self.params.within

    def score_one(self, state: NoveltyState, event: Event) -> Reading:
        value = self._value(event)
        if value is None or state.since is None:
            return HOLD
        ts = event.ts
        counts: dict[str, tuple[int, float]] = {}
        for name, times in state.fresh.items():
            if times[0] + self.params.within > ts:
                counts[name] = (len(times), times[0])
        if value in state.fresh:
            if self._counts_in(state.fresh[value], ts):
                n, first = counts[value]
                counts[value] = (n + 1, first)
        elif self._is_new(state, value, ts):
            counts[value] = (1, ts)
        # A late event is judged with the counts as they stand at the newest event.
        at = state.newest if state.newest is not None and ts < state.newest else None
        return self._judge(counts, prefer=value, at=at)

    def _judge(self, counts: dict[str, tuple[int, float]], prefer: str | None,
               at: float | None = None) -> Reading:
        if not counts:
            return Reading(Verdict.CLEAR, at=at)
        reached = [name for name, (n, _) in counts.items() if n >= self.params.min_count]
        if prefer in reached or (not reached and prefer in counts):
            name = prefer
        elif reached:
            name = max(reached, key=lambda g: counts[g][0])
        else:
            name = max(counts, key=lambda g: counts[g][0])
        assert name is not None
        n, first = counts[name]
        evidence = {"value": n, "group": name, "first_seen": first,
                    "unseen_for": format_duration(self.params.unseen_for),
                    "within": format_duration(self.params.within)}
        return Reading(Verdict.BREACH if reached else Verdict.CLEAR, evidence, at=at)

    def learn_one(self, state: NoveltyState, event: Event) -> None:
        value = self._value(event)
        ts = event.ts
        if state.since is None or ts < state.since:
            state.since = ts
        if state.newest is None or ts > state.newest:
            state.newest = ts
        if value is None:
            return
        times = state.fresh.get(value)
        if times is not None:
            if self._counts_in(times, ts):
                insort(times, ts)
        elif self._is_new(state, value, ts):
            state.fresh[value] = [ts]
        if ts > state.last_seen.get(value, float("-inf")):
            state.last_seen[value] = ts
        self._forget(state, state.newest)

    def _forget(self, state: NoveltyState, now: float) -> None:
        horizon = now - self.params.unseen_for
        for name in [n for n, t in state.last_seen.items() if t < horizon]:
            del state.last_seen[name]
        for name in [n for n, t in state.fresh.items() if t[0] + self.params.within <= now]:
            del state.fresh[name]

    def next_deadline(self, state: NoveltyState) -> float | None:
        ends = [times[0] + self.params.within for times in state.fresh.values()]
        return min(ends) if ends else None

    def on_deadline(self, state: NoveltyState, at: float) -> Reading:
        self._forget(state, at)
        counts = {name: (len(times), times[0]) for name, times in state.fresh.items()}
        return self._judge(counts, prefer=None)

    def describe(self) -> dict[str, Any]:
        p = self.params
        return {"kind": self.kind, "field": p.field, "unseen_for": format_duration(p.unseen_for),
                "within": format_duration(p.within), "min_count": p.min_count,
                "warmup": format_duration(self.warmup)}
