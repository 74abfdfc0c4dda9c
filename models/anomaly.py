"""anomaly: an online detector scores each reading of a numeric field against what is usual for
its key, and alerts when the key's recent scores are unlikely under its own history of scores.

The default (``detector: seasonal``, ``models.likelihood``): the expected value is the key's
level plus the usual offset of the reading's hour of the week (blended with its hour of the day
while the week's is young); five streams of scores — the reading alone (a spike), the last hour
and the last half day of readings (a level shift, a broken daily rhythm), the spread of the last
changes (a burst of variance, a stuck sensor) and a fast level parting from a slow one (a slow
drift) — are each judged by their *anomaly likelihood* (Ahmad et al. 2017): the tail
probability of the recent scores under a Gaussian of the key's own history of them. A reading
breaches when the smallest of the five, times five, is below ``epsilon`` (default 10⁻⁵): a key
behaving as usual breaches with probability about 5·10⁻⁵ a reading or less — for a sensor
reporting every five minutes, about one false alarm per key in two hundred days, before the
hysteresis (``clear_at``) merges repeats into one alert. No verdict in the first ``learn_for``
(default 7 days: a week's rhythm is learned before it is judged) and 150 readings.

The detectors of river below judge instead by a running quantile of their scores — which fires
on the top (1 − ``quantile``) of every key's readings for ever, whatever the data — and are kept
for the rules that name them.

Detectors and their scores (higher is more anomalous):

- ``gaussian``: river's ``GaussianScorer`` fits a normal to all readings or the last
  ``window``; the score is ``|z|``, the distance from the mean in standard deviations. (River's
  2Φ(|z|) − 1 ranks alike but rounds to 1.0 beyond |z| ≈ 8: tied top scores would pin the
  threshold at 1.0, which nothing exceeds. ``predictive`` avoids its clipped score likewise.)
- ``half_space_trees``: ``HalfSpaceTrees`` (10 trees of height 6, seeded) over the value scaled
  by ``MinMaxScaler`` plus the seasonal ``features`` (hours as sin/cos, weekday as a number, all
  in [0, 1]); river's score, in [0, 1].
- ``predictive``: ``PredictiveAnomalyDetection`` around Holt's forecaster (``HoltWinters``,
  level and trend) learns one-step forecasts and their squared errors; the score is the error in
  units of their root mean square.

Threshold: ``stats.RollingQuantile`` of the last ⌈5 / (1 − q)⌉ scores (at least 200). After
``n`` scores a normal reading exceeds it with probability (n(1 − q) + q) / (n + 1): 0.6% at
q = 0.995 once 1,000 scores are in, more before.

Warm-up: the first ``warmup`` readings only teach (HOLD): the first half the detector, the second
half the threshold too. Then a reading BREACHes when its score is above the threshold, else
CLEARs. A breaching reading is kept out of the detector (river's ``protect_anomaly_detector``)
so a spike does not become normal; its score enters the threshold as in river's
``QuantileFilter``, so the top-share promise holds and a lasting shift lifts the threshold, ends
its own alert and is then learned. The price: once anomalies fill the top (1 − q) of the window
(five readings; one while fewer than 1/(1 − q) scores are in), similar ones stay silent until
their scores leave it (on river's WaterFlow, with two days of warm-up, only the first of three
outages alerts). ``QuantileFilter`` itself is not used: it has no warm-up and judges
``score >= threshold``, so a flat series (all scores 0) would be anomalous and never learned.

Readings must come in event-time order (Holt counts steps, the features read the time): one
older than the newest is ``late()`` and not used. An event without the field: ``UNDECIDED``
(a HOLD the engine counts); one whose value is not a finite number within ±1e15 is skipped
(``UNUSABLE``) and never learned.

State per key stops growing once the threshold window is full (``test_state_size``); the
random generator river's Gaussian carries is left out of its pickle (nothing samples from it).
Costs per reading and state sizes: ``bench/README.md``.
"""

from __future__ import annotations

import copyreg
import math
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from river import anomaly, preprocessing, proba, stats, time_series

from models.base import (
    HOLD,
    UNDECIDED,
    UNUSABLE,
    KindParams,
    Reading,
    Verdict,
    WarningModel,
    late,
    learnable,
    pickled_by_position,
    significant,
)
from models.durations import NonNegativeDuration, format_duration
from models.likelihood import Direction, SeasonalJudge, SeasonalState, hour_of_week
from models.refdata import ModelEnv
from topics.codec import Event
from topics.schemas import CITY_TZ

Detector = Literal["seasonal", "gaussian", "half_space_trees", "predictive"]
RIVER_DETECTORS = ("gaussian", "half_space_trees", "predictive")
Feature = Literal["hour_of_day", "hour_of_week", "weekday"]

TREES, TREE_HEIGHT, HST_WINDOW = 10, 6, 100
HST_VALUE_LIMITS = (-1.0, 2.0)
"""The scaled value's range the trees split: the learned range plus its width either side, so
readings beyond anything learned fall in cells of their own."""
HOLT_ALPHA, HOLT_BETA = 0.5, 0.05
RECENT_FADING = 0.05
"""Fading factor of the recent mean and std reported as the baseline (about 20 readings)."""


class AnomalyParams(KindParams):
    field: str
    """The numeric event field watched."""
    detector: Detector = "seasonal"
    epsilon: float = Field(default=1e-5, gt=0, lt=0.01)
    """seasonal: breach when the chance that a usual key shows the recent scores is below
    this (times the number of streams)."""
    clear_at: float = Field(default=1e-3, gt=0, lt=1)
    """seasonal: a firing alert resolves once that chance is back above this."""
    learn_for: NonNegativeDuration = 7 * 86400.0
    """seasonal: event time a key is learned before its first verdict."""
    direction: Direction = "both"
    """seasonal: alert only on readings above what is usual (``up``: a surge of visits), only
    below (``down``), or either way (``both``, with bursts and stuck readings)."""
    counts: bool = False
    """seasonal: the field counts things in an interval (visits, calls, tickets): chance
    variation is judged as a count's, which is wider, relatively, when counts are small. A
    negative count is not used."""
    features: list[Feature] = Field(default_factory=list)
    """Seasonal features beside the value (half_space_trees only)."""
    window: int | None = Field(default=None, ge=2)
    """Readings the detector fits over: gaussian's rolling window (default: all readings), the
    trees' reference window (default 100)."""
    quantile: float | None = Field(default=None, gt=0.5, lt=1)
    """River's detectors: alert on scores above this quantile of recent scores (default 0.995:
    the top 0.5%)."""
    warmup: int | None = Field(default=None, ge=4)
    """Readings learned before any verdict (default 100; half_space_trees: twice ``window``)."""
    seed: int = 0
    """Seeds the randomised detector (half_space_trees)."""
    min_score: float | None = Field(default=None, ge=0)
    """A score must also reach this to alert (default 3 — standard deviations — for gaussian
    and predictive; none for half_space_trees): the top 0.5% of a quiet series, or of the few
    scores seen on a first day, is not yet unusual."""

    @model_validator(mode="after")
    def _for_the_detector(self) -> AnomalyParams:
        if self.detector == "seasonal":
            given = [name for name in ("quantile", "min_score", "window", "features")
                     if getattr(self, name)]
            if given:
                raise ValueError(f"{', '.join(map(repr, given))}: used only by detectors "
                                 f"{', '.join(RIVER_DETECTORS)}")
        else:
            given = [name for name, value in (("direction", self.direction != "both"),
                                              ("counts", self.counts)) if value]
            if given:
                raise ValueError(f"{', '.join(map(repr, given))}: used only by detector "
                                 "seasonal")
        if self.clear_at <= self.epsilon:
            raise ValueError("'clear_at' must be above 'epsilon' (a band between them keeps a "
                             "firing alert from flapping)")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> AnomalyParams:
        if self.features and self.detector != "half_space_trees":
            raise ValueError("'features' are used only by detector half_space_trees")
        if self.window is not None and self.detector == "predictive":
            raise ValueError("'window' is not used by detector predictive")
        return self

    @field_validator("warmup")
    @classmethod
    def _warmup_spans_two_tree_windows(cls, warmup: int | None, info: ValidationInfo
                                       ) -> int | None:
        # A field validator, so the error names 'warmup' (and its line); a window that is
        # itself invalid is absent from ``info.data`` and reported on its own.
        if warmup is None or info.data.get("detector") != "half_space_trees" \
                or "window" not in info.data:
            return warmup
        window = info.data["window"] or HST_WINDOW
        if warmup < 2 * window:
            raise ValueError(f"at least {2 * window} for window {window} (half_space_trees "
                             "score nothing before their first window)")
        return warmup


def _gaussian_without_rng(gaussian: proba.Gaussian) -> tuple[Any, tuple[dict[str, Any]]]:
    """Pickle river's Gaussian without its random generator: 3.7 KB of Mersenne Twister state
    per key, written to the changelog at every commit, for a ``sample()`` nothing calls."""
    return _gaussian_with_fresh_rng, ({k: v for k, v in vars(gaussian).items() if k != "_rng"},)


def _gaussian_with_fresh_rng(fields: dict[str, Any]) -> proba.Gaussian:
    gaussian = proba.Gaussian.__new__(proba.Gaussian)
    gaussian.__dict__.update(fields)
    gaussian._rng = random.Random(fields.get("seed"))
    return gaussian


copyreg.pickle(proba.Gaussian, _gaussian_without_rng)


@pickled_by_position
@dataclass(slots=True)
class AnomalyState:
    detector: Any
    """GaussianScorer, HalfSpaceTrees or PredictiveAnomalyDetection."""
    threshold: stats.RollingQuantile
    scaler: preprocessing.MinMaxScaler | None = None
    recent: tuple[stats.EWMean, stats.EWVar] | None = None
    """Recent mean and variance of the learned readings (detectors other than gaussian)."""
    seen: int = 0
    """Readings folded in, the warm-up included."""
    held_out: int = 0
    """Readings kept out of the detector as anomalous."""
    last_ts: float | None = None


class Anomaly(WarningModel[AnomalyState]):
    """Breach when a reading's anomaly score is above the learned quantile of recent scores.

    >>> from topics.codec import Event
    >>> m = Anomaly(AnomalyParams(field="pressure_kpa", detector="gaussian", warmup=20))
    >>> s = m.new_state()
    >>> out = []
    >>> for i, kpa in enumerate([500, 502, 498, 501, 499] * 5 + [500, 620, None]):
    ...     ev = Event("t", "k", 60.0 * i, {"pressure_kpa": kpa})
    ...     out.append(m.score_one(s, ev).verdict.value); m.learn_one(s, ev)
    >>> out[:20] == ["hold"] * 20, out[20:]
    (True, ['clear', 'clear', 'clear', 'clear', 'clear', 'clear', 'breach', 'hold'])
    >>> ev = m.score_one(s, Event("t", "k", 1e4, {"pressure_kpa": 620})).evidence
    >>> ev["value"], ev["score"] > ev["threshold"], ev["baseline"], ev["seen"], ev["held_out"]
    (620, True, {'mean': 500.0, 'std': 1.41421}, 27, 1)
    """

    kind = "anomaly"
    Params = AnomalyParams
    evidence_fields = ("value", "score", "threshold", "quantile", "baseline", "baseline_mean",
                       "baseline_std", "detector", "seen", "held_out", "expected", "min_score",
                       "chance", "epsilon", "flagged_by")
    event_fields = ("field",)

    def __init__(self, params: AnomalyParams, env: ModelEnv | None = None) -> None:
        super().__init__(params, env)
        self._hst_window = params.window or HST_WINDOW
        default = 2 * self._hst_window if params.detector == "half_space_trees" else 100
        self.warmup = params.warmup or default
        default_floor = 0.0 if params.detector == "half_space_trees" else 3.0
        self.min_score = default_floor if params.min_score is None else params.min_score
        self._threshold_from = self.warmup // 2
        self.quantile = params.quantile or 0.995
        self._threshold_window = max(200, math.ceil(5 / (1 - self.quantile)))
        self.judge = SeasonalJudge(params.epsilon, params.clear_at, params.learn_for,
                                   params.direction, params.counts) \
            if params.detector == "seasonal" else None

    def new_state(self) -> AnomalyState | SeasonalState:  # type: ignore[override]
        if self.judge is not None:
            return SeasonalState()
        p = self.params
        state = AnomalyState(detector=None,
                             threshold=stats.RollingQuantile(self.quantile,
                                                             self._threshold_window))
        if p.detector == "gaussian":
            state.detector = anomaly.GaussianScorer(window_size=p.window, grace_period=0)
            return state
        state.recent = (stats.EWMean(RECENT_FADING), stats.EWVar(RECENT_FADING))
        if p.detector == "half_space_trees":
            state.scaler = preprocessing.MinMaxScaler()
            state.detector = anomaly.HalfSpaceTrees(
                n_trees=TREES, height=TREE_HEIGHT, window_size=self._hst_window,
                limits={"value": HST_VALUE_LIMITS}, seed=p.seed)
        else:
            holt = time_series.HoltWinters(alpha=HOLT_ALPHA, beta=HOLT_BETA)
            # Its error statistics start once Holt has settled, a quarter into the warm-up.
            state.detector = anomaly.PredictiveAnomalyDetection(
                holt, horizon=1, warmup_period=self.warmup // 4)
        return state

    def _value(self, event: Event) -> float | None:
        value = learnable(event.data.get(self.params.field))
        if value is not None and value < 0 and self.params.counts:
            return None
        return value

    def score_one(self, state: Any, event: Event) -> Reading:
        value = self._value(event)
        if value is None:
            return UNDECIDED if event.data.get(self.params.field) is None else UNUSABLE
        if self.judge is not None:
            scorer = state.scorer
            if scorer.last_ts is not None and event.ts < scorer.last_ts:
                return late(scorer.last_ts - event.ts)
            verdict, evidence = self.judge.score(state, event, value, event.ts,
                                                 hour_of_week(event))
            return HOLD if verdict == "hold" else Reading(_VERDICTS[verdict], evidence)
        if state.last_ts is not None and event.ts < state.last_ts:
            return late(state.last_ts - event.ts)
        if state.seen < self.warmup:
            return HOLD
        score, expected = self._score(state, value, event.ts)
        threshold = state.threshold.get()
        assert threshold is not None  # scores are learned from the middle of the warm-up on
        mean, std = self._baseline(state)
        evidence: dict[str, Any] = {
            "value": event.data[self.params.field], "score": significant(score),
            "threshold": significant(threshold), "quantile": self.quantile,
            "baseline": {"mean": mean, "std": std},
            "baseline_mean": mean, "baseline_std": std, "detector": self.params.detector,
            "seen": state.seen, "held_out": state.held_out}
        if expected is not None:
            evidence["expected"] = significant(expected)
        if self.min_score:
            evidence["min_score"] = self.min_score
        return Reading(Verdict.BREACH if self._unusual(score, threshold) else Verdict.CLEAR,
                       evidence)

    def _unusual(self, score: float, threshold: float) -> bool:
        return score > threshold and score >= self.min_score

    def learn_one(self, state: Any, event: Event) -> None:
        value = self._value(event)
        if self.judge is not None:
            scorer = state.scorer
            if value is not None and (scorer.last_ts is None or event.ts >= scorer.last_ts):
                self.judge.learn(state, event, value, event.ts, hour_of_week(event))
            return
        if value is None or (state.last_ts is not None and event.ts < state.last_ts):
            return
        state.last_ts = event.ts
        anomalous = False
        if state.seen >= self._threshold_from:
            score, _ = self._score(state, value, event.ts)
            anomalous = state.seen >= self.warmup and self._unusual(score,
                                                                    state.threshold.get())
            state.threshold.update(score)
        state.seen += 1
        if anomalous:
            state.held_out += 1
            return
        detector = state.detector
        if self.params.detector == "gaussian":
            detector.learn_one(None, value)
            return
        assert state.recent is not None
        for stat in state.recent:
            stat.update(value)
        if state.scaler is not None:
            state.scaler.learn_one({"value": value})
            detector.learn_one(self._features(state, value, event.ts))
            return
        if detector.predictive_model._initialized:
            detector.score_one(None, value)  # river updates its error statistics here
        detector.learn_one(None, value)

    def _score(self, state: AnomalyState, value: float, ts: float) -> tuple[float, float | None]:
        """The reading's anomaly score (and the forecast, for predictive); changes nothing."""
        detector = state.detector
        if self.params.detector == "gaussian":
            gaussian = detector.gaussian
            return _ratio(abs(value - gaussian.mu), gaussian.sigma), None
        if state.scaler is not None:
            return float(detector.score_one(self._features(state, value, ts))), None
        expected = detector.predictive_model.forecast(1)[0]
        if not detector.dynamic_mae.n:
            return 0.0, expected
        return _ratio(abs(value - expected), math.sqrt(detector.dynamic_mae.get())), expected

    def _features(self, state: AnomalyState, value: float, ts: float) -> dict[str, float]:
        assert state.scaler is not None
        x = state.scaler.transform_one({"value": value})
        if not self.params.features:
            return x
        local = datetime.fromtimestamp(ts, CITY_TZ)
        hour = local.hour + local.minute / 60 + local.second / 3600
        for feature in self.params.features:
            if feature == "hour_of_day":
                x |= _circle("hour", hour / 24)
            elif feature == "hour_of_week":
                x |= _circle("week_hour", ((local.isoweekday() - 1) * 24 + hour) / 168)
            else:
                x["weekday"] = (local.isoweekday() - 1) / 6
        return x

    def _baseline(self, state: AnomalyState) -> tuple[float, float]:
        """Mean and std of the readings the detector learned: the gaussian's own fit, or a
        recent exponentially weighted mean and std."""
        if state.recent is None:
            gaussian = state.detector.gaussian
            mean, std = gaussian.mu, gaussian.sigma
        else:
            mean, var = state.recent[0].get(), state.recent[1].get()
            std = math.sqrt(max(var, 0.0))
        return significant(mean), significant(std)

    def describe(self) -> dict[str, Any]:
        p = self.params
        if self.judge is not None:
            return {"kind": self.kind, "field": p.field, "detector": p.detector,
                    "alerts when": f"the chance of the recent scores, under the key's own "
                                   f"history, is below {p.epsilon:g} (clears above "
                                   f"{p.clear_at:g})",
                    "learns first": format_duration(p.learn_for),
                    "direction": p.direction, "counts": p.counts}
        out: dict[str, Any] = {
            "kind": self.kind, "field": p.field, "detector": p.detector,
            "quantile": self.quantile, "warmup": self.warmup,
            "threshold": f"quantile {self.quantile} of the last {self._threshold_window} scores"}
        if p.detector == "half_space_trees":
            out |= {"features": p.features, "window": self._hst_window, "seed": p.seed}
        elif p.detector == "gaussian":
            out["window"] = p.window
        return out


_VERDICTS = {"breach": Verdict.BREACH, "band": Verdict.BAND, "clear": Verdict.CLEAR}


def _ratio(deviation: float, scale: float) -> float:
    """A deviation in units of ``scale``; a scale of zero (a flat history) counts as tiny."""
    return deviation / max(scale, 1e-9)



def _circle(name: str, turn: float) -> dict[str, float]:
    """A cyclic time as two features in [0, 1], so 23:59 lies beside 00:00."""
    angle = 2 * math.pi * turn
    return {f"{name}_sin": (math.sin(angle) + 1) / 2, f"{name}_cos": (math.cos(angle) + 1) / 2}
