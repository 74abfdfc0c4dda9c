"""drift: a key's level of a numeric field has shifted, and stays shifted.

The key breaches at the reading on which the detector signals a change in the level of
``field`` and clears at the next reading that does not, so each shift is one episode that fires
and resolves (leave ``for`` at 0).

The default (``detector: seasonal``, ``models.seasonal_shift``) needs nothing but ``field``: a
CUSUM on each reading's residual from the key's own seasonal baseline (level plus hour-of-week
offsets, as the ``anomaly`` default learns them), in units of the residuals' own running spread,
so the same rule fits a series of any scale and a daily rhythm is not taken for a drift. A shift
must pile up 30 spreads of residual beyond half a spread a reading: a lasting step of four
spreads or more is found within about 13 readings, one of three within about 25, one of two
within about 75; smaller ones are mostly taken into the baseline unseen, and a single spike is
not a shift. No verdict in the first ``learn_for`` (default 7 days, the week's rhythm learned
first) and 100 readings; after a shift the baseline follows the new level and that direction
cannot fire again until the residuals are centred once more (one alert per step or ramp).
Expected false alarms: about one in 100,000 readings of a key behaving as usual, about one a
year for a five-minute sensor, most of them in the weeks just after learning, while the
hour-of-week offsets are young (``bench/README.md``). It takes no ``delta``, ``threshold`` or
``grace``: those are in the field's units or readings, for the river detectors, which are kept
for the rules that name them:

- ``adwin`` (ADWIN, checked at every reading): ``delta`` is the significance (default 0.002).
  Its bound takes values to lie in [0, 1]; on a field with a wider range it signals more
  readily than ``delta`` says, and a step of a few units shows within a handful of readings.
- ``page_hinkley``: ``delta`` is the deviation from the running mean tolerated per reading
  (default 0.005) and ``threshold`` how much excess deviation must pile up (default 50), both in
  the field's units: set them for the field.

Like river, these start afresh after a shift: for ``grace`` readings (default 30) no new shift
can be signalled. ``direction`` (``up``, ``down``, ``both``) is Page-Hinkley's own one-sided
test and the default's choice of CUSUMs that alert (both run: a shift the other way is absorbed
without an alert); ADWIN sees both ways, so a shift the other way restarts it without an alert.

The evidence gives the mean before and after the shift. The default: what was expected of the
readings since its CUSUM left zero (the change point it points at) and what they averaged, with
``expected`` and ``score`` (the residual in spreads) at every reading. River's detectors: the
means of the readings since the last shift, split where the cumulative deviation from the
running mean turned (the change point Page-Hinkley's statistic points at). Clear readings repeat
the latest shift's two means (so a resolved alert says which shift it ends) beside ``mean``, the
running mean since that shift (the default: the baseline's level, without the hour's offset).

Readings must come in event-time order: one older than the newest is ``late()`` and not used.
Events without the field say nothing (``UNDECIDED``, a HOLD the engine counts). ``score_one``
of a river detector updates a copy of the state (a detector cannot be asked what it would do
without changing it); the default computes its step without changing anything.

State per key: the default's baseline (hour tables) and CUSUMs, about 2.4 kB pickled. River's: the
detector and thirteen numbers. With Page-Hinkley that stays about 0.6 kB pickled; ADWIN keeps
buckets that grow with the log of the readings since the last shift (pickled: 1.2 kB at 100
readings, 2.0 kB at 10,000, 2.5 kB at 100,000).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from river import drift

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
)
from models.durations import NonNegativeDuration, format_duration
from models.likelihood import hour_of_week
from models.refdata import ModelEnv
from models.seasonal_shift import ALLOWANCE, INTERVAL, SeasonalShift, SeasonalShiftState
from topics.codec import Event

RIVER_ONLY = ("delta", "threshold", "grace")
"""Options of river's detectors, in the field's units or in readings; the default takes none."""
GRACE = 30
"""River's detectors: readings before a shift can be signalled, unless ``grace`` says."""


class DriftParams(KindParams):
    field: str
    """The numeric event field watched."""
    detector: Literal["seasonal", "adwin", "page_hinkley"] = "seasonal"
    delta: float | None = Field(default=None, gt=0)
    """ADWIN: significance, in (0, 1). Page-Hinkley: tolerated deviation per reading."""
    threshold: float | None = Field(default=None, gt=0)
    """Page-Hinkley only: the detection threshold (lambda)."""
    grace: int | None = Field(default=None, ge=1)
    """River's detectors: readings (from the start, and after every shift) before a shift can
    be signalled (default 30)."""
    direction: Literal["up", "down", "both"] = "both"
    learn_for: NonNegativeDuration | None = None
    """seasonal only: event time a key is learned before its first verdict (default 7 days)."""

    # Field validators, so that a modeller's error points at the option's own line.
    @field_validator(*RIVER_ONLY)
    @classmethod
    def _river_only(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("detector") == "seasonal":
            raise ValueError(
                "an option of river's detectors (adwin, page_hinkley), in the field's units or "
                "readings; the default detector (seasonal) is scale-free and takes only "
                "'learn_for' and 'direction' besides 'field' (to set it, name 'detector: "
                "page_hinkley' or 'adwin')")
        return value

    @field_validator("learn_for")
    @classmethod
    def _seasonal_only(cls, value: float | None, info: ValidationInfo) -> float | None:
        detector = info.data.get("detector")
        if value is not None and detector not in ("seasonal", None):
            raise ValueError(f"an option of the default detector (seasonal), not of "
                             f"{detector}; {detector} waits 'grace' readings")
        return value

    @model_validator(mode="after")
    def _fits_detector(self) -> DriftParams:
        if self.detector == "adwin":
            if self.threshold is not None:
                raise ValueError("'threshold' is a page_hinkley option; adwin takes 'delta'")
            if self.delta is not None and self.delta >= 1:
                raise ValueError("adwin's 'delta' is a significance level, below 1")
        return self


@pickled_by_position
@dataclass(slots=True)
class DriftState:
    detector: Any
    """A river ``ADWIN`` or ``PageHinkley``."""
    n: int = 0
    """Readings since the start or the last shift (the regime), their sum and mean."""
    total: float = 0.0
    mean: float = 0.0
    cusum: float = 0.0
    """Sum over the regime of each reading minus the running mean at it."""
    top: tuple[float, int, float] = (0.0, 0, 0.0)
    """(highest cusum, n and total at it): where a downward shift began."""
    bottom: tuple[float, int, float] = (0.0, 0, 0.0)
    """(lowest cusum, n and total at it): where an upward shift began."""
    newest: float | None = None
    levels: tuple[float | None, float] | None = None
    """(mean before, mean after) of the latest shift, repeated in clear readings' evidence."""


class Drift(WarningModel[DriftState]):
    """Breach on the reading where the detector signals a level shift; clear on the next.

    >>> from topics.codec import Event
    >>> m = Drift(DriftParams(field="value", detector="page_hinkley", delta=2.5, threshold=20))
    >>> s = m.new_state()
    >>> out = []
    >>> for i, temp in enumerate([45.0] * 60 + [38.0] * 6):
    ...     ev = Event("t", "k", 600.0 * i, {"value": temp})
    ...     out.append(m.score_one(s, ev)); m.learn_one(s, ev)
    >>> [(i, r.verdict.value) for i, r in enumerate(out) if r.verdict.value != "clear"]
    [(64, 'breach')]
    >>> {k: out[64].evidence[k] for k in ("mean_before", "mean_after", "direction")}
    {'mean_before': 45.0, 'mean_after': 38.0, 'direction': 'down'}
    """

    kind = "drift"
    Params = DriftParams
    evidence_fields = ("value", "field", "detector", "direction", "mean", "shift", "mean_before",
                       "mean_after", "readings_before", "readings_after", "expected", "score")
    event_fields = ("field",)
    event_expressions = ()

    def __init__(self, params: DriftParams, env: ModelEnv | None = None) -> None:
        super().__init__(params, env)
        self.judge = SeasonalShift(7 * 86400.0 if params.learn_for is None else params.learn_for,
                                   params.direction) if params.detector == "seasonal" else None

    def new_state(self) -> DriftState | SeasonalShiftState:  # type: ignore[override]
        p = self.params
        if self.judge is not None:
            return SeasonalShiftState()
        if p.detector == "adwin":
            detector: Any = drift.ADWIN(delta=p.delta or 0.002, clock=1,
                                        grace_period=p.grace or GRACE)
        else:
            detector = drift.PageHinkley(min_instances=p.grace or GRACE, delta=p.delta or 0.005,
                                         threshold=p.threshold or 50.0, mode=p.direction)
        return DriftState(detector)

    def _value(self, event: Event) -> float | None:
        value = event.data.get(self.params.field)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return learnable(value)

    def score_one(self, state: Any, event: Event) -> Reading:
        value = self._value(event)
        if value is None:
            raw = event.data.get(self.params.field)
            if raw is None:
                return UNDECIDED
            return UNUSABLE if isinstance(raw, int | float) and not isinstance(raw, bool) \
                else HOLD
        newest = state.baseline.last_ts if self.judge is not None else state.newest
        if newest is not None and event.ts < newest:
            return late(float(newest - event.ts))
        if self.judge is not None:
            verdict, found = self.judge.score(state, value, event.ts, hour_of_week(event))
            if verdict == "hold":
                return HOLD
            evidence = {"value": value, "field": self.params.field, "detector": "seasonal"}
            return Reading(Verdict(verdict), evidence | found)
        trial = pickle.loads(pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
        return self._step(trial, event.ts, value)

    def learn_one(self, state: Any, event: Event) -> None:
        value = self._value(event)
        if self.judge is not None:
            newest = state.baseline.last_ts
            if value is not None and (newest is None or event.ts >= newest):
                self.judge.learn(state, value, event.ts, hour_of_week(event))
        elif value is not None and (state.newest is None or event.ts >= state.newest):
            self._step(state, event.ts, value)

    def _step(self, state: DriftState, ts: float, value: float) -> Reading:
        """Feed one reading to the state and say what it shows."""
        detector = state.detector
        if detector.drift_detected:  # river restarts the detector now; the regime restarts too
            state.n, state.total, state.mean, state.cusum = 0, 0.0, 0.0, 0.0
            state.top = state.bottom = (0.0, 0, 0.0)
        detector.update(value)
        state.newest = ts
        state.n += 1
        state.total += value
        state.mean += (value - state.mean) / state.n  # exact for a constant series: ties hold
        state.cusum += value - state.mean
        if state.cusum >= state.top[0]:
            state.top = (state.cusum, state.n, state.total)
        if state.cusum <= state.bottom[0]:
            state.bottom = (state.cusum, state.n, state.total)
        evidence: dict[str, Any] = {"value": value, "field": self.params.field,
                                    "detector": self.params.detector}
        if not detector.drift_detected:
            evidence["mean"] = state.mean
            if state.levels is not None:
                evidence["mean_before"], evidence["mean_after"] = state.levels
            return Reading(Verdict.CLEAR, evidence)
        one_sided = self.params.detector == "page_hinkley" and self.params.direction != "both"
        evidence |= _split(state, value, self.params.direction if one_sided else None)
        state.levels = (evidence["mean_before"], evidence["mean_after"])
        wanted = self.params.direction
        verdict = Verdict.BREACH if wanted in ("both", evidence["direction"]) else Verdict.CLEAR
        return Reading(verdict, evidence)

    def describe(self) -> dict[str, Any]:
        p = self.params
        if self.judge is not None:
            return {"kind": self.kind, "field": p.field, "detector": p.detector,
                    "alerts when": "the readings' residuals from the key's seasonal baseline, "
                                   "in their own spreads, pile up past "
                                   f"{INTERVAL:g} beyond {ALLOWANCE:g} a reading",
                    "learns first": format_duration(self.judge.learn_for),
                    "direction": p.direction}
        out: dict[str, Any] = {"kind": self.kind, "field": p.field, "detector": p.detector,
                               "grace": p.grace or GRACE, "direction": p.direction}
        if p.delta is not None:
            out["delta"] = p.delta
        if p.threshold is not None:
            out["threshold"] = p.threshold
        return out


def _split(state: DriftState, value: float, side: str | None) -> dict[str, Any]:
    """The regime's mean before and after its change point, and the shift's direction (``side``
    when the detector only tests one; else the way the cumulative deviation moved further)."""
    if side is None:
        side = "down" if state.top[0] - state.cusum > state.cusum - state.bottom[0] else "up"
    _, n_before, total_before = state.top if side == "down" else state.bottom
    n_after = state.n - n_before
    before = total_before / n_before if n_before else None
    after = (state.total - total_before) / n_after if n_after else value
    return {"mean_before": before, "mean_after": after,
            "shift": None if before is None else after - before, "direction": side,
            "readings_before": n_before, "readings_after": n_after}
