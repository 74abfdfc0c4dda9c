"""surge: a key has far more events in the last ``bucket`` than it has learned to expect.

Counting is per key and, with ``group_by``, separately for each value of that field within the
key (``category`` within a district): the alert says which group surges. Each group learns its
own baseline online from its past: the counts of its events in fixed buckets of ``bucket``
(aligned to the epoch, so ``1h`` buckets are clock hours), averaged with exponentially fading
weights of half-life ``halflife`` buckets (an empty bucket counts as 0). A short half-life
follows the day's rhythm with less lag, a long one is steadier.

With ``baseline: share`` (needs ``group_by``) the expected count is relative instead: the
group's learned mean over the key's learned mean is its usual share of the key's events, and
the expected count now is that share applied to the other groups' count in the last bucket
(``share / (1 − share) × others``). Rhythms that move every group alike (the day, the week,
holidays) cancel out, so the half-life can be long; a group that has had (nearly) all the
key's events has nothing to be compared with and is not judged.

Judging: at each event, the group's count in the last ``bucket`` (sliding: ``(ts − bucket,
ts]``, this event included) is compared with a Poisson law whose mean is the expected count
(at least ``floor``). It BREACHes when the chance of that many events or more is below ``p_value``
and the count is at least ``min_count``; else it CLEARs. An event of one group is judged
together with the other groups' current counts, so one group's quiet event does not end another
group's surge (the evidence names the most unusual group). A group with fewer than ``warmup``
buckets of history is not judged (HOLD while no group can be), nor, with ``baseline: share``, a
group that has had more than 99% of the key's events. Only the event's group and the groups
found unusual at their last judgement are judged (a count rises only with its own events).

Evidence: ``value`` (the count), ``group``, ``baseline`` (the expected count), ``limit`` (the
smallest count that would be unusual), ``p`` (the chance), ``bucket``.

A surge is learned like any other count once its bucket is over, so one that lasts raises the
baseline and ends its own alert after a bucket or two. The clock re-judges a firing alert when
its oldest counted event leaves the sliding bucket, so the alert resolves when the surge stops
even if the key sends nothing more. Events must come in time order: one older than the group's
newest is ``late()`` and not used.

State per key: per group the times of its events in the last bucket, the current bucket's start
and count, the weighted sums of the baseline and the number of buckets seen — a few numbers plus
one float per event in the last bucket.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, model_validator

from models.base import HOLD, KindParams, Reading, Verdict, WarningModel, late, pickled_by_position
from models.durations import PositiveDuration, format_duration
from models.refdata import ModelEnv
from topics.codec import Event


class SurgeParams(KindParams):
    bucket: PositiveDuration
    """Length of the counting bucket (and of the sliding count that is judged)."""
    group_by: str | None = None
    """Count separately for each value of this event field within the key."""
    halflife: float = Field(default=6.0, gt=0)
    """Half-life of the baseline's fading weights, in buckets."""
    warmup: int = Field(default=6, ge=1)
    """Buckets of a group's history before it is judged."""
    p_value: float = Field(default=0.001, gt=0, lt=0.5)
    """A count is unusual when the Poisson chance of at least that many is below this."""
    min_count: int = Field(default=5, ge=1)
    """Never alert on fewer events than this in a bucket."""
    floor: float = Field(default=0.5, gt=0)
    """The lowest baseline (events per bucket) a count is judged against."""
    baseline: Literal["own", "share"] = "own"
    """``own``: a group's expected count is its own learned count per bucket. ``share`` (needs
    ``group_by``): its learned share of the key's events times the other groups' count in the
    same bucket, so the day's rhythm, which moves every group alike, cancels out."""

    @model_validator(mode="after")
    def _share_needs_groups(self) -> SurgeParams:
        if self.baseline == "share" and not self.group_by:
            raise ValueError("baseline 'share' needs 'group_by'")
        return self


@pickled_by_position
@dataclass(slots=True)
class GroupState:
    recent: list[float] = field(default_factory=list)
    """Times of the group's events in the last bucket (sliding), in order."""
    start: float = 0.0
    """Start of the bucket being counted for learning."""
    count: int = 0
    """Events in that bucket so far."""
    weighted: float = 0.0
    weights: float = 0.0
    """Exponentially weighted sum of past bucket counts, and of their weights."""
    seen: int = 0
    """Buckets of history learned."""


@pickled_by_position
@dataclass(slots=True)
class SurgeState:
    groups: dict[str, GroupState] = field(default_factory=dict)
    total: GroupState = field(default_factory=GroupState)
    """All the key's events (learned only with ``baseline: share``)."""
    hot: list[str] = field(default_factory=list)
    """Groups whose count was unusual when last judged: judged again at every event."""


@lru_cache(maxsize=4096)
def poisson_limit(mean: float, p_value: float, least: int = 0) -> int:
    """The smallest count ``c >= least`` with P(X >= c) < ``p_value`` for X ~ Poisson(mean).

    >>> poisson_limit(2.0, 0.001), poisson_limit(2.0, 0.001, 12), poisson_limit(0.5, 0.01)
    (9, 12, 4)
    """
    head, k = 0.0, 0
    while True:
        if k >= least and 1.0 - head < p_value:
            return k
        head += math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1))
        k += 1


def poisson_tail(count: int, mean: float) -> float:
    """P(X >= count) for X ~ Poisson(mean).

    >>> round(poisson_tail(3, 1.0), 4), poisson_tail(0, 2.0), round(poisson_tail(10, 2.0), 6)
    (0.0803, 1.0, 4.6e-05)
    """
    if count <= 0:
        return 1.0
    if count <= mean:
        # the tail from at or below the mean is large; sum the head instead
        head = sum(math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1))
                   for k in range(count))
        return max(0.0, 1.0 - head)
    total, k = 0.0, count
    while True:
        term = math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1))
        total += term
        if term < total * 1e-12:
            return min(1.0, total)
        k += 1


class Surge(WarningModel[SurgeState]):
    """Breach when a key's (or a group's) count in the last bucket is unusual for it.

    >>> from topics.codec import Event
    >>> m = Surge(SurgeParams(bucket="1h", warmup=3))
    >>> s = m.new_state()
    >>> for t in (0, 3600, 7200, 10800):  # one event an hour: the baseline is 1
    ...     m.learn_one(s, Event("t", "k", t, {}))
    >>> out = []
    >>> for t in range(11000, 11600, 60):  # then ten in ten minutes
    ...     ev = Event("t", "k", t, {}); out.append(m.score_one(s, ev).verdict.value)
    ...     m.learn_one(s, ev)
    >>> out.index("breach") + 2  # events in the last hour when it fires
    6
    """

    kind = "surge"
    Params = SurgeParams
    evidence_fields = ("value", "group", "baseline", "limit", "p", "bucket", "share")
    event_fields = ("group_by",)
    uses_deadlines = True
    deadlines_when_idle = False

    def __init__(self, params: SurgeParams, env: ModelEnv | None = None) -> None:
        super().__init__(params, env)
        self.fade = 0.5 ** (1.0 / params.halflife)

    def new_state(self) -> SurgeState:
        return SurgeState()

    def _group(self, event: Event) -> str | None:
        if self.params.group_by is None:
            return ""
        value = event.data.get(self.params.group_by)
        return None if value is None else str(value)

    def _bucket_start(self, ts: float) -> float:
        return ts // self.params.bucket * self.params.bucket

    def _rolled(self, g: GroupState, ts: float) -> tuple[float, float, int]:
        """The group's (weighted, weights, seen) with every bucket before ``ts``'s learned."""
        start = self._bucket_start(ts)
        if g.seen == 0 and g.count == 0 and not g.recent:
            return g.weighted, g.weights, g.seen
        if start <= g.start:
            return g.weighted, g.weights, g.seen
        weighted = g.weighted * self.fade + g.count
        weights = g.weights * self.fade + 1.0
        empty = round((start - g.start) / self.params.bucket) - 1
        if empty > 0:
            decay = self.fade ** empty
            weighted *= decay
            weights = weights * decay + (1 - decay) / (1 - self.fade)
        return weighted, weights, g.seen + empty + 1

    def _count(self, g: GroupState, ts: float) -> int:
        """Events in (ts − bucket, ts]; ``recent`` is in time order and none is after ts."""
        return len(g.recent) - bisect_right(g.recent, ts - self.params.bucket)

    def _judge_group(self, name: str, g: GroupState, ts: float, extra: int,
                     total: tuple[float, float, int] | None) -> dict[str, Any] | None:
        weighted, weights, seen = self._rolled(g, ts)
        if seen < self.params.warmup or weights <= 0:
            return None
        count = self._count(g, ts) + extra
        baseline = weighted / weights
        if total is not None:  # share: the group's share of the key's events, applied now
            total_mean = total[0] / total[1] if total[1] > 0 else 0.0
            share = baseline / total_mean if total_mean > 0 else 1.0
            if share > 0.99:
                return None  # (nearly) all the key's events: nothing to compare it with
            baseline = share / (1 - share) * (total[2] - count)
        mean = max(round(baseline, 3), self.params.floor)
        limit = poisson_limit(mean, self.params.p_value, self.params.min_count)
        return {"value": count, "group": name or None, "baseline": round(baseline, 3),
                "limit": limit, "p": poisson_tail(count, mean),
                "bucket": format_duration(self.params.bucket), "unusual": count >= limit}

    def _judge(self, state: SurgeState, ts: float, group: str | None) -> Reading:
        judged: list[dict[str, Any]] = []
        total = None
        if self.params.baseline == "share":
            weighted, weights, _ = self._rolled(state.total, ts)
            total = (weighted, weights, self._count(state.total, ts) + (group is not None))
        # Only the event's group and the groups found unusual before can be unusual now: a
        # group's count rises only with its own events.
        names = [group] if group is not None and group in state.groups else []
        names += [h for h in state.hot if h != group and h in state.groups]
        for name in names:
            g = state.groups[name]
            found = self._judge_group(name, g, ts, 1 if name == group else 0, total)
            if found is not None:
                judged.append(found)
        if not judged:
            return HOLD
        worst = min(judged, key=lambda j: (not j["unusual"], j["p"]))
        unusual = worst.pop("unusual")
        return Reading(Verdict.BREACH if unusual else Verdict.CLEAR, worst)

    def score_one(self, state: SurgeState, event: Event) -> Reading:
        group = self._group(event)
        if group is None:
            return HOLD
        g = state.groups.get(group)
        if g is not None and g.recent and event.ts < g.recent[-1]:
            return late(g.recent[-1] - event.ts)
        return self._judge(state, event.ts, group)

    def learn_one(self, state: SurgeState, event: Event) -> None:
        group = self._group(event)
        if group is None:
            return
        g = state.groups.get(group)
        if g is None:
            g = state.groups[group] = GroupState(start=self._bucket_start(event.ts))
        elif g.recent and event.ts < g.recent[-1]:
            return
        self._advance(g, event.ts)
        horizon = event.ts - self.params.bucket
        for other in state.groups.values():
            # every group forgets what left the sliding bucket, so no deadline lies behind
            if other.recent and other.recent[0] <= horizon:
                del other.recent[:bisect_right(other.recent, horizon)]
        g.recent.append(event.ts)
        g.count += 1
        if self.params.baseline == "share":
            total = state.total
            if not total.recent and total.seen == 0 and total.count == 0:
                total.start = self._bucket_start(event.ts)
            self._advance(total, event.ts)
            total.recent.append(event.ts)
            total.count += 1
        self._rehot(state, event.ts, [group, *state.hot])

    def _rehot(self, state: SurgeState, ts: float, names: list[str]) -> None:
        """Remember which of ``names`` are unusual as of ``ts`` (the state is up to date)."""
        total = None
        if self.params.baseline == "share":
            weighted, weights, _ = self._rolled(state.total, ts)
            total = (weighted, weights, self._count(state.total, ts))
        hot = []
        for name in dict.fromkeys(names):
            g = state.groups.get(name)
            found = None if g is None else self._judge_group(name, g, ts, 0, total)
            if found is not None and found["unusual"]:
                hot.append(name)
        state.hot = hot

    def _advance(self, g: GroupState, ts: float) -> None:
        g.weighted, g.weights, g.seen = self._rolled(g, ts)
        start = self._bucket_start(ts)
        if start > g.start:
            g.start, g.count = start, 0
        horizon = ts - self.params.bucket
        if g.recent and g.recent[0] <= horizon:
            del g.recent[:bisect_right(g.recent, horizon)]

    def next_deadline(self, state: SurgeState) -> float | None:
        """When the oldest counted event of any group leaves the sliding bucket."""
        oldest = [g.recent[0] for g in state.groups.values() if g.recent]
        return min(oldest) + self.params.bucket if oldest else None

    def on_deadline(self, state: SurgeState, at: float) -> Reading:
        for g in [*state.groups.values(), state.total]:
            if g.recent:
                self._advance(g, at)
        reading = self._judge(state, at, None)
        self._rehot(state, at, state.hot)
        return reading if reading.verdict is Verdict.BREACH else Reading(
            Verdict.CLEAR, reading.evidence)

    def describe(self) -> dict[str, Any]:
        p = self.params
        return {"kind": self.kind, "bucket": format_duration(p.bucket), "group_by": p.group_by,
                "halflife": p.halflife, "warmup": p.warmup, "p_value": p.p_value,
                "min_count": p.min_count}
