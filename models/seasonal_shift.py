"""The ``drift`` kind's default detector: a CUSUM on a key's residuals from its own seasonal
baseline, in units of the residuals' own spread, so it needs no setting in the field's units.

- Baseline: ``models.likelihood``'s (the ``anomaly`` default's) level plus hour-of-week
  offsets, because a daily rhythm fed raw to a drift detector is itself a drift.
- Residuals are divided by their robust running spread (mean absolute residual, learned from
  readings outside a shift), so the same test fits a series of any scale; each is clipped to
  ``CLIP`` spreads, so that one spike cannot make a shift on its own.
- Two one-sided CUSUMs (Page 1954) accumulate the residuals beyond ``ALLOWANCE`` spreads; a
  side passing ``INTERVAL`` is a shift. The allowance is half a spread, the classic choice for
  the smallest shift worth finding quickly (one spread); the interval is set high because
  residuals are autocorrelated (noise, and a rhythm not quite learned), which makes the sums
  wander further than independent ones would.
- Outside a shift the level follows the readings slowly (``QUIET_HALFLIFE_S``) and each reading
  moves it as if at most ``CLIP`` spreads away, because a baseline that followed as fast as the
  ``anomaly`` default's would keep up with a slow drift and never see it; the hour's offsets
  stop learning once a side's CUSUM passes ``SUSPECTED`` of the interval, because a slot's
  offset, learned from one reading an hour a week, would otherwise absorb a shift within hours.
- Warm-up: no verdict before ``learn_for`` of event time and ``JUDGED_FROM`` readings, because
  offsets not yet learned leave the rhythm in the residuals. A first shift found within
  ``RELEARN_WITHIN_S`` of the first verdict lies in the week of learning: the offsets of the
  hours the level lagged it in took it in and would look shifted every week after, so the key
  learns again from its present instead of alerting (``bench/learning_step.py``).
- One alert per episode: after a shift the level follows in full (``LEVEL_HALFLIFE_S``) while
  the hour's offsets and the spread stay as they were, and that side cannot fire again until
  its CUSUM — capped at the interval, with the allowance cut to ``EPISODE_ALLOWANCE`` — is
  back at zero, because a ramp, or a step not yet fully absorbed, would otherwise fire again
  and again.
- Evidence: the mean of what was expected of the readings since the CUSUM left zero, and the
  mean of what came, both in the field's units with the rhythm accounted for.

Three weeks of five-minute readings with a daily rhythm; a lasting step of 3 after two weeks is
found at its 9th reading (the hour of the week is passed in; the kind reads it off the event):

>>> import math
>>> judge, state, fired, start = SeasonalShift(), SeasonalShiftState(), [], 288 * 14 + 6
>>> for i in range(288 * 21):
...     noise, step = (i * 7 % 11 - 5) / 10, 3.0 if i >= start else 0.0
...     value = 50 + 5 * math.sin(2 * math.pi * i / 288) + noise + step
...     verdict, evidence = judge.score(state, value, 300.0 * i, i // 12 % 168)
...     if verdict == "breach":
...         fired.append((i - start, evidence["direction"], round(evidence["mean_before"], 1),
...                       round(evidence["mean_after"], 1)))
...     judge.learn(state, value, 300.0 * i, i // 12 % 168)
>>> fired
[(8, 'up', 51.2, 54.1)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from models.base import pickled_by_position, significant
from models.likelihood import CLIP, LEVEL_HALFLIFE_S, SeasonalBaseline

ALLOWANCE = 0.5
"""Spreads a residual must exceed to push its side's CUSUM up."""
INTERVAL = 30.0
"""Spreads of accumulated excess that make a shift."""
EPISODE_ALLOWANCE = 0.1
"""The allowance while a shift is being absorbed: its episode ends once the residuals are
centred again, not merely below half a spread."""
QUIET_HALFLIFE_S = 2 * 86400.0
"""How fast the level follows the readings outside a shift."""
JUDGED_FROM = 100
"""Readings before the first verdict (the spread must have settled too)."""
SUSPECTED = 0.5
"""The share of the interval past which a side's shift is suspected and the hour's offsets
stop learning."""
CHANGE_AFTER = 1.0
"""Spreads of statistic within which a side is as good as at zero: the change point it points
at (where the evidence's two means split) is after the last reading that left it there."""
RELEARN_WITHIN_S = 86400.0
"""A first shift found this soon after the first verdict lies in the week of learning."""
Side = Literal["up", "down"]
SIDES: tuple[Side, Side] = ("up", "down")
QUIET = (0.0, 0, 0.0, 0.0)
"""A side's CUSUM at zero. A side is (statistic, readings since its change point, the sum of
those readings, the sum of what was expected of them)."""
Cusum = tuple[float, int, float, float]


@pickled_by_position
@dataclass(slots=True)
class SeasonalShiftState:
    baseline: SeasonalBaseline = field(default_factory=SeasonalBaseline)
    up: Cusum = QUIET
    down: Cusum = QUIET
    episode: Side | None = None
    """The side whose shift is being absorbed (its CUSUM has not yet come back to zero)."""
    regime: int = 0
    """Readings since the first verdict could be given or the last episode ended."""
    levels: tuple[float, float] | None = None
    """(mean expected, mean that came) of the latest shift, repeated in clear readings'
    evidence."""
    judged_from: float | None = None
    """When the first verdict was given."""


@dataclass(slots=True)
class Step:
    """What one reading does to a key (``SeasonalShift.step``; nothing is changed yet)."""

    ready: bool
    z: float = 0.0
    up: Cusum = QUIET
    down: Cusum = QUIET
    shift: Side | None = None
    ends_episode: bool = False
    relearn: bool = False
    """The key's first shift, found within ``RELEARN_WITHIN_S`` of its first verdict: it
    happened while the key learned."""


@dataclass(slots=True)
class SeasonalShift:
    """Judge a key's readings for lasting shifts of its level, against its seasonal baseline.
    A reading breaches where a side's CUSUM passes ``INTERVAL`` (in ``direction``); else it
    clears, so each shift is one episode that fires and resolves. ``hold`` while learning."""

    learn_for: float = 7 * 86400.0
    direction: Literal["up", "down", "both"] = "both"

    def ready(self, state: SeasonalShiftState, ts: float) -> bool:
        baseline = state.baseline
        return (baseline.first_ts is not None and ts - baseline.first_ts >= self.learn_for
                and baseline.n >= JUDGED_FROM)

    def step(self, state: SeasonalShiftState, value: float, ts: float,
             hour_of_week: int) -> Step:
        if not self.ready(state, ts):
            return Step(False)
        baseline = state.baseline
        assert baseline.level is not None
        expected = baseline.expected(hour_of_week)
        z = (value - expected) / max(baseline.spread(), 1e-12 * max(1.0, abs(expected)))
        z = min(max(z, -CLIP), CLIP)
        out = Step(True, z)
        for side, sign in zip(SIDES, (1.0, -1.0), strict=True):
            statistic, count, total, usual = state.up if side == "up" else state.down
            allowance = EPISODE_ALLOWANCE if state.episode == side else ALLOWANCE
            statistic = max(0.0, statistic + sign * z - allowance)
            if statistic > CHANGE_AFTER:
                cusum = (statistic, count + 1, total + value, usual + expected)
            else:  # the change, if any, comes after this reading
                cusum = (statistic, 0, 0.0, 0.0)
            if state.episode == side:
                cusum = (min(cusum[0], INTERVAL), *cusum[1:])
                out.ends_episode = cusum[0] <= 0.0
            elif cusum[0] > INTERVAL:
                if (state.levels is None and state.judged_from is not None
                        and ts - state.judged_from <= RELEARN_WITHIN_S):
                    out.relearn = True  # the first shift, within a day of the first verdict
                else:
                    out.shift = side
            if side == "up":
                out.up = cusum
            else:
                out.down = cusum
        return out

    def score(self, state: SeasonalShiftState, value: float, ts: float, hour_of_week: int
              ) -> tuple[str, dict[str, Any]]:
        """(verdict name, evidence) of the reading; changes nothing."""
        step = self.step(state, value, ts, hour_of_week)
        if not step.ready:
            return "hold", {}
        baseline = state.baseline
        assert baseline.level is not None
        evidence: dict[str, Any] = {
            "expected": significant(baseline.expected(hour_of_week)),
            "score": significant(step.z), "mean": significant(baseline.level)}
        if step.shift is None:
            if state.levels is not None:
                evidence["mean_before"], evidence["mean_after"] = state.levels
            return "clear", evidence
        cusum = step.up if step.shift == "up" else step.down
        before, after = _means(cusum)
        count = cusum[1]
        evidence |= {"mean_before": before, "mean_after": after,
                     "shift": significant(after - before), "direction": step.shift,
                     "readings_before": max(state.regime - count + 1, 0),
                     "readings_after": count}
        return ("breach" if self.direction in ("both", step.shift) else "clear"), evidence

    def learn(self, state: SeasonalShiftState, value: float, ts: float,
              hour_of_week: int) -> None:
        step = self.step(state, value, ts, hour_of_week)
        baseline = state.baseline
        if not step.ready:
            # Learning: the offsets are young and every residual is the rhythm being learned.
            baseline.learn(value, ts, hour_of_week, True, math.inf)
            return
        if step.relearn:
            # A shift found as judging begins lies in the week of learning: the offsets of the
            # hours the level lagged it in took it in, and would make those hours look shifted
            # every week. The key learns again, from its present.
            state.__init__()  # type: ignore[misc]
            self.learn(state, value, ts, hour_of_week)  # its first reading of learning
            return
        if state.judged_from is None:
            state.judged_from = ts
        state.up, state.down = step.up, step.down
        state.regime += 1
        if step.ends_episode:
            state.episode, state.regime = None, 0
        if step.shift is not None:
            state.levels = _means(step.up if step.shift == "up" else step.down)
            capped = (INTERVAL, *(state.up if step.shift == "up" else state.down)[1:])
            state.up, state.down = (capped, QUIET) if step.shift == "up" else (QUIET, capped)
            state.episode = step.shift
        shifting = state.episode is not None
        limit = math.inf if shifting else CLIP * baseline.scale
        # An hour's offset learns fast (its slot sees a reading an hour a week): once a shift is
        # suspected, it would absorb the shift before it is found.
        suspected = max(state.up[0], state.down[0]) > SUSPECTED * INTERVAL
        baseline.learn(value, ts, hour_of_week, not shifting, limit,
                       LEVEL_HALFLIFE_S if shifting else QUIET_HALFLIFE_S,
                       not (shifting or suspected))


def _means(cusum: Cusum) -> tuple[float, float]:
    """(the mean of what was expected, the mean of what came) over a CUSUM's readings."""
    _, count, total, usual = cusum
    return significant(usual / count), significant(total / count)
