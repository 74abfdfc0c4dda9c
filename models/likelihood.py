"""Learned anomaly scores turned into alerts whose false-alarm rate is bounded by design.

A detector's raw score means nothing until compared with what is usual for that key. The
*anomaly likelihood* (Ahmad, Lavin, Purdy and Agha 2017, "Unsupervised real-time anomaly
detection for streaming data") compares a short moving average of a key's recent scores with
a Gaussian fitted to its own long history of such averages: the tail probability of the recent
average is the chance that a normal key shows it. A reading is flagged when that chance falls
below ``epsilon``. Whatever the data, a key whose scores are as usual is flagged with
probability about ``epsilon`` per reading — about ``epsilon`` times its readings a day false
alarms per key per day — instead of a fixed share of every key's readings, for ever, as a
quantile threshold would.

``ScoreStream`` does this for one stream of scores; ``SeasonalScorer`` makes the streams a
sensor's readings call for (``models.anomaly`` uses both).

>>> stream = ScoreStream(average_of=1, side="both", floor=0.5)
>>> import random
>>> rng = random.Random(1)
>>> for _ in range(500):
...     _ = stream.observe(rng.gauss(0, 1))
>>> stream.tail(0.5) > 0.5, stream.tail(6.0) < 1e-8
(True, True)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from models.base import pickled_by_position, significant
from topics.codec import Event
from topics.schemas import CITY_TZ

CLIP = 4.0
HISTORY_MIN = 100
"""Recent means a stream must have learned before its tail probabilities are believed."""


@pickled_by_position
@dataclass(slots=True)
class ScoreStream:
    """One stream of scores: the mean of the last ``average_of`` scores, and a Gaussian of
    that mean's history (exponentially weighted over about ``memory`` readings)."""

    average_of: int = 1
    side: Literal["upper", "lower", "both"] = "upper"
    """Which tail is unusual: high scores, low ones, or both."""
    floor: float = 0.0
    """The least spread believed (a short history, or a quiet one, underestimates it)."""
    memory: int = 2000
    recent: deque[float] = field(default_factory=deque)
    total: float = 0.0
    n: int = 0
    mean: float = 0.0
    var: float = 0.0

    def average(self, score: float) -> float:
        """The recent mean if ``score`` were the latest (changes nothing)."""
        if self.average_of == 1:
            return score
        total, count = self.total + score, len(self.recent) + 1
        if len(self.recent) >= self.average_of:
            total -= self.recent[0]
            count -= 1
        return total / count

    def tail(self, average: float, side: Literal["upper", "lower", "both"] | None = None
             ) -> float:
        """The chance that a usual recent mean is at least as far from usual as ``average``
        (on ``side``, the stream's own by default)."""
        if self.n < HISTORY_MIN:
            return 1.0
        spread = max(math.sqrt(self.var), self.floor, 1e-12)
        distance = (average - self.mean) / spread
        side = side or self.side
        if side == "both":
            return math.erfc(abs(distance) / math.sqrt(2.0))
        if side == "lower":
            distance = -distance
        return 0.5 * math.erfc(distance / math.sqrt(2.0))

    def push(self, score: float) -> None:
        """Take ``score`` into the recent window (without learning it as usual)."""
        self.recent.append(score)
        self.total += score
        if len(self.recent) > self.average_of:
            self.total -= self.recent.popleft()

    def learn(self, average: float) -> None:
        """Take a recent mean into the history of usual ones, with bounded influence: an
        outlier counts as if it were ``CLIP`` spreads from the mean (an anomaly in the warm-up
        would otherwise widen the history so much that the next one looked usual)."""
        self.n += 1
        weight = max(1.0 / self.n, 1.0 / self.memory)
        limit = CLIP * max(math.sqrt(self.var), self.floor, 1e-12)
        delta = min(max(average - self.mean, -limit), limit)
        self.mean += weight * delta
        self.var = (1.0 - weight) * (self.var + weight * delta * delta)

    def observe(self, score: float) -> float:
        """Push, judge and learn in one step (for streams that are always learned); the tail."""
        average = self.average(score)
        p = self.tail(average)
        self.push(score)
        self.learn(average)
        return p


Direction = Literal["up", "down", "both"]

HOUR_S = 3600.0
LEVEL_HALFLIFE_S = 12 * HOUR_S
"""How fast the expected level follows the readings (a shift is news for about a day)."""
SLOW_HALFLIFE_S = 7 * 86400.0
SEASON_HALFLIFE_S = 7 * 86400.0
"""How fast an hour's usual offset from the level follows (in event time of that hour)."""
SCALE_HALFLIFE_S = 3 * 86400.0
LASTING_S = HOUR_S
"""How long readings must stay flagged before the level and the hourly offsets follow them in
full. Before that each moves as if the reading were at most ``CLIP`` spreads from it: a brief
excursion (a tank's pressure 900 kPa up for half an hour) then leaves no offset behind that
would make the usual readings after it look unusual for days, while a rhythm still being
learned (flagged at first) is learned as before."""
SHORT, LONG = 12, 144
"""Readings averaged by the short and the long stream (an hour and half a day of 5-minute
readings)."""
BASELINE_READINGS = 50
"""Readings the expected value and its scale learn from before scores are taken as history."""
JUDGED_FROM = BASELINE_READINGS + HISTORY_MIN
"""Readings before the streams can judge (the baseline, then the streams' history)."""


@pickled_by_position
@dataclass(slots=True)
class RecentSpread:
    """The mean square of the last ``SHORT`` changes against its usual value, as a nearly
    Gaussian score: the cube root of a mean of squares (Wilson and Hilferty), about 1 when the
    changes are as usual, 0 when there are none."""

    usual: float = 0.0
    recent: deque[float] = field(default_factory=deque)

    def score(self, change: float) -> float:
        squares = sum(self.recent) + change * change
        if len(self.recent) >= SHORT:
            squares -= self.recent[0]
        count = min(len(self.recent) + 1, SHORT)
        return (max(squares, 0.0) / count / max(self.usual, 1e-12)) ** (1.0 / 3.0)

    def learn(self, change: float, weight: float, usual: bool) -> None:
        if usual:
            self.usual += weight * (change * change - self.usual)
        self.recent.append(change * change)
        if len(self.recent) > SHORT:
            self.recent.popleft()


class SeasonalTables:
    """The expected value of a reading — an exponentially weighted level plus the usual offset
    of the reading's hour of the week, blended with that of its hour of the day while the
    week's is young — and the running spread of readings about it, for the dataclasses that
    hold those fields (``SeasonalScorer``, ``SeasonalBaseline``)."""

    __slots__ = ()
    level: float | None
    daily: list[float]
    daily_n: list[int]
    weekly: list[float]
    weekly_n: list[int]
    scale: float
    """Mean absolute residual (times 1.2533, a Gaussian's standard deviation)."""
    n: int

    def expected(self, hour_of_week: int) -> float:
        assert self.level is not None
        day = hour_of_week % 24
        seen = self.weekly_n[hour_of_week]
        trust = seen / (seen + 3.0)
        return self.level + trust * self.weekly[hour_of_week] + (1 - trust) * self.daily[day]

    def learn_scale(self, residual: float, weight: float) -> None:
        """Fold a usual reading's residual into the spread."""
        # Winsorised: an outage learned before anything can be judged widens the scale by at
        # most a few spreads a reading, not by its whole depth.
        size = abs(residual) if self.scale <= 0 else min(abs(residual), CLIP * self.scale)
        self.scale += weight * (size - self.scale)

    def follow(self, value: float, elapsed: float, hour_of_week: int, limit: float,
               level_halflife: float = LEVEL_HALFLIFE_S, offsets: bool = True) -> float:
        """Move the hour's offsets (unless not ``offsets``) and the level toward ``value``, each
        as if it were at most ``limit`` away; the reading without its hour's offset (before the
        level moved)."""
        assert self.level is not None
        offset = value - self.level
        day = hour_of_week % 24
        # A slot gets 1/24 (1/168) of the readings: its half-life counts its share of the time.
        for table, counts, slot, share in ((self.daily, self.daily_n, day, 24),
                                           (self.weekly, self.weekly_n, hour_of_week, 168)
                                           )[:2 if offsets else 0]:
            counts[slot] += 1
            table[slot] += _weight(elapsed * share, SEASON_HALFLIFE_S, counts[slot]) * _clip(
                offset - table[slot], limit)
        deseasoned = value - (self.expected(hour_of_week) - self.level)
        self.level += _weight(elapsed, level_halflife, self.n) * _clip(
            deseasoned - self.level, limit)
        return deseasoned


@pickled_by_position
@dataclass(slots=True)
class SeasonalScorer(SeasonalTables):
    """A reading's distance from what is usual for its hour of the week, as six streams of
    scores (``STREAM_NAMES``): the reading alone (a spike); the last ``SHORT`` and ``LONG``
    readings (a level shift, a broken daily rhythm); the spread of the last ``SHORT`` changes of
    the residual (a burst of variance) and of the reading itself (a stuck sensor changes not at
    all); and a fast level parting from a slow one (a slow drift).

    Expected value and spread: ``SeasonalTables``.
    """

    level: float | None = None
    slow: float | None = None
    """A level that follows over weeks: a slow drift shows as the two levels parting."""
    last_ts: float | None = None
    last_value: float | None = None
    last_residual: float = 0.0
    daily: list[float] = field(default_factory=lambda: [0.0] * 24)
    daily_n: list[int] = field(default_factory=lambda: [0] * 24)
    weekly: list[float] = field(default_factory=lambda: [0.0] * 168)
    weekly_n: list[int] = field(default_factory=lambda: [0] * 168)
    scale: float = 0.0
    burst: RecentSpread = field(default_factory=RecentSpread)
    stuck: RecentSpread = field(default_factory=RecentSpread)
    streams: tuple[ScoreStream, ...] = field(default_factory=lambda: (
        ScoreStream(1, "both", 1.0), ScoreStream(SHORT, "both", SHORT ** -0.5),
        ScoreStream(LONG, "both", LONG ** -0.5), ScoreStream(1, "upper", 0.1),
        ScoreStream(1, "lower", 0.1), ScoreStream(1, "both", 0.05)))
    n: int = 0
    first_ts: float | None = None
    flagged_since: float | None = None
    """Event time of the first of the current run of flagged readings (None: the last was
    usual)."""

    def scores(self, value: float, ts: float, hour_of_week: int) -> tuple[float, ...]:
        """The reading's score in each stream (changes nothing)."""
        if self.level is None or self.last_value is None:
            return (0.0, 0.0, 0.0, 1.0, 1.0, 0.0)
        scale = max(self.scale * 1.2533, 1e-9)  # mean |residual| → its standard deviation
        residual = value - self.expected(hour_of_week)
        z = residual / scale
        assert self.slow is not None
        parting = (self.level - self.slow) / scale
        return (z, z, z, self.burst.score(residual - self.last_residual),
                self.stuck.score(value - self.last_value), parting)

    def tails(self, scores: tuple[float, ...], direction: Direction = "both") -> list[float]:
        """Each stream's tail probability; for ``direction`` up (down) only the streams of the
        reading's level, one-sided, judge (a burst or a stuck sensor is neither up nor down)."""
        if direction == "both":
            return [s.tail(s.average(x)) for s, x in zip(self.streams, scores, strict=True)]
        side = "upper" if direction == "up" else "lower"
        return [s.tail(s.average(x), side) if i in SIGNED_STREAMS else 1.0
                for i, (s, x) in enumerate(zip(self.streams, scores, strict=True))]

    def learn(self, value: float, ts: float, hour_of_week: int, scores: tuple[float, ...],
              usual: bool, judging: bool = True) -> None:
        """Fold the reading in; ``usual``: it was not flagged, so its scores (and its residual,
        for the scales) join the history of what is usual; ``judging``: the key's learning
        time is over (before, a flagged reading is mostly a rhythm not yet learned, and the level
        and offsets follow it in full)."""
        if self.first_ts is None:
            self.first_ts = ts
        self.n += 1
        # Scores mean something once the baseline has settled: only then are they history.
        if self.n > BASELINE_READINGS:
            for stream, score in zip(self.streams, scores, strict=True):
                average = stream.average(score)
                stream.push(score)
                if usual:
                    stream.learn(average)
        if self.level is None or self.last_value is None:
            self.level = self.slow = value
            self.last_ts, self.last_value = ts, value
            return
        elapsed = max(ts - (self.last_ts or ts), 0.0)
        residual = value - self.expected(hour_of_week)
        weight = _weight(elapsed, SCALE_HALFLIFE_S, self.n)
        if usual:
            self.learn_scale(residual, weight)
        self.burst.learn(residual - self.last_residual, weight, usual)
        self.stuck.learn(value - self.last_value, weight, usual)
        if usual:
            self.flagged_since = None
        elif self.flagged_since is None:
            self.flagged_since = ts
        brief = (judging and not usual and self.scale > 0
                 and ts - self.flagged_since < LASTING_S)
        limit = CLIP * self.scale if brief else math.inf
        deseasoned = self.follow(value, elapsed, hour_of_week, limit)
        assert self.slow is not None
        self.slow += _weight(elapsed, SLOW_HALFLIFE_S, self.n) * _clip(
            deseasoned - self.slow, limit)
        self.last_ts, self.last_value = ts, value
        self.last_residual = value - self.expected(hour_of_week)


@pickled_by_position
@dataclass(slots=True)
class SeasonalBaseline(SeasonalTables):
    """``SeasonalTables`` alone: what a reading is expected to be and how far usual readings
    lie from that, for a kind that judges the residuals its own way (``drift``'s default)."""

    level: float | None = None
    daily: list[float] = field(default_factory=lambda: [0.0] * 24)
    daily_n: list[int] = field(default_factory=lambda: [0] * 24)
    weekly: list[float] = field(default_factory=lambda: [0.0] * 168)
    weekly_n: list[int] = field(default_factory=lambda: [0] * 168)
    scale: float = 0.0
    n: int = 0
    first_ts: float | None = None
    last_ts: float | None = None

    def spread(self) -> float:
        """The residuals' standard deviation, were they Gaussian (from their mean absolute
        value, which one outlier moves less than it moves a mean square)."""
        return self.scale * 1.2533

    def learn(self, value: float, ts: float, hour_of_week: int, usual: bool,
              limit: float, level_halflife: float = LEVEL_HALFLIFE_S,
              offsets: bool | None = None) -> None:
        """Fold the reading in: if ``usual``, its residual into the spread, and its offset into
        its hour's (if ``offsets``, by default ``usual``); the level moves toward it (with
        ``level_halflife``) as if it were at most ``limit`` away."""
        self.n += 1
        if self.level is None or self.last_ts is None:
            self.level, self.first_ts, self.last_ts = value, ts, ts
            return
        elapsed = max(ts - self.last_ts, 0.0)
        if usual:
            self.learn_scale(value - self.expected(hour_of_week),
                             _weight(elapsed, SCALE_HALFLIFE_S, self.n))
        self.follow(value, elapsed, hour_of_week, limit, level_halflife,
                    usual if offsets is None else offsets)
        self.last_ts = ts


def hour_of_week(event: Event) -> int:
    """0 (Monday 00:00-01:00, local) to 167, from the hour and weekday decode adds."""
    data = event.data
    hour, weekday = data.get("hour"), data.get("weekday")
    if not isinstance(hour, int) or not isinstance(weekday, int):
        local = datetime.fromtimestamp(event.ts, CITY_TZ)
        hour, weekday = local.hour, local.isoweekday()
    return (weekday - 1) * 24 + hour


def _clip(delta: float, limit: float) -> float:
    return min(max(delta, -limit), limit)


def _weight(elapsed: float, halflife: float, n: int) -> float:
    """The weight of a new reading ``elapsed`` seconds after the previous one (at least 1/n
    while there are few, so early estimates are plain means)."""
    weight = 1.0 - math.exp(-elapsed * math.log(2) / halflife)
    return max(weight, 1.0 / n) if n else weight


STREAM_NAMES = ("spike", "shift", "slow shift", "burst", "stuck", "drift")
"""What each stream of ``SeasonalScorer`` flags, as the evidence says it."""
SIGNED_STREAMS = (0, 1, 2, 5)
"""The streams whose scores say which way the level moved (the others judge spreads)."""


@pickled_by_position
@dataclass(slots=True)
class SeasonalState:
    scorer: SeasonalScorer = field(default_factory=SeasonalScorer)


@dataclass(slots=True)
class SeasonalJudge:
    """The ``anomaly`` kind's default: ``SeasonalScorer``'s streams judged by their anomaly
    likelihood. A reading BREACHes when the smallest tail probability of its streams, times
    their number (a Bonferroni bound), is below ``epsilon``; it is in the BAND (a firing alert
    stays, a new one does not start) below ``clear_at``; else it CLEARs. Flagged readings (below
    ``clear_at``) are kept out of every history of what is usual, so an anomaly does not become
    usual while it lasts; the expected level still follows — in full once the readings have been
    flagged for ``LASTING_S``, before that only as far as a reading ``CLIP`` spreads away would
    move it — so a lasting shift is accepted within a day or two and its alert resolves, while
    a brief excursion leaves the baseline as it was. No verdict before ``learn_for`` of event time
    and 150 readings (the baseline, then the streams' history, must exist)."""

    epsilon: float = 1e-5
    clear_at: float = 1e-3
    learn_for: float = 7 * 86400.0
    direction: Direction = "both"
    """Which way an unusual reading must lie: ``up`` (a surge of visits), ``down``, or both."""
    counts: bool = False
    """The readings count things in an interval: judged as ``2·√(x + 3/8)`` (Anscombe), on
    which a count's chance variation is about 1 at every level, so a quiet hour's Poisson
    tail is not taken for a Gaussian's."""
    _last: tuple[object, tuple[float, ...], float, float] | None = None

    def _judge(self, state: SeasonalState, event: object, value: float, ts: float,
               hour_of_week: int) -> tuple[tuple[float, ...], float, list[float], float]:
        """(scores, the chance judged in ``direction``, its streams' tails, the chance either
        way). What is unusual either way stays out of the history of what is usual, whichever
        way alerts: a learned hour of no visits would make the usual hour after it a surge."""
        scorer = state.scorer
        scores = scorer.scores(self._scaled(value), ts, hour_of_week)
        # Tails as soon as the streams have a history (before ``learn_for`` they keep what they
        # flag out of it, though they give no verdict yet).
        if scorer.n < JUDGED_FROM:
            tails = [1.0] * len(scores)
            self._last = (event, scores, 1.0, 1.0)
            return scores, 1.0, tails, 1.0
        either = scorer.tails(scores)
        either_chance = min(1.0, min(either) * len(either))
        if self.direction == "both":
            tails, chance = either, either_chance
        else:
            tails = scorer.tails(scores, self.direction)
            chance = min(1.0, min(tails) * len(SIGNED_STREAMS))
        self._last = (event, scores, chance, either_chance)
        return scores, chance, tails, either_chance

    def _scaled(self, value: float) -> float:
        return 2.0 * math.sqrt(max(value, 0.0) + 0.375) if self.counts else value

    def ready(self, state: SeasonalState, ts: float) -> bool:
        scorer = state.scorer
        return (scorer.first_ts is not None and ts - scorer.first_ts >= self.learn_for
                and scorer.n >= JUDGED_FROM)

    def score(self, state: SeasonalState, event: object, value: float, ts: float,
              hour_of_week: int) -> tuple[str, dict[str, object]]:
        """(verdict name, evidence); ``hold`` while learning."""
        scores, chance, tails, _ = self._judge(state, event, value, ts, hour_of_week)
        if not self.ready(state, ts):
            return "hold", {}
        scorer = state.scorer
        expected, spread = scorer.expected(hour_of_week), scorer.scale * 1.2533
        if self.counts:  # back to counts: x = (y/2)² − 3/8, so dx ≈ (y/2)·dy
            expected, spread = max((expected / 2) ** 2 - 0.375, 0.0), spread * expected / 2
        evidence: dict[str, object] = {
            "value": value, "expected": significant(expected), "score": significant(scores[0]),
            "chance": float(f"{chance:.3g}"), "epsilon": self.epsilon,
            "flagged_by": STREAM_NAMES[tails.index(min(tails))],
            "baseline_mean": significant(expected),
            "baseline_std": significant(spread), "seen": scorer.n}
        if chance < self.epsilon:
            return "breach", evidence
        return ("band" if chance < self.clear_at else "clear"), evidence

    def learn(self, state: SeasonalState, event: object, value: float, ts: float,
              hour_of_week: int) -> None:
        last = self._last
        if last is not None and last[0] is event:
            scores, either = last[1], last[3]
        else:
            scores, _, _, either = self._judge(state, event, value, ts, hour_of_week)
        usual = either >= self.clear_at
        state.scorer.learn(self._scaled(value), ts, hour_of_week, scores, usual,
                           self.ready(state, ts))
        self._last = None

