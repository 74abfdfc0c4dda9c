"""forecast: an online forecaster says a value will reach a limit within a horizon (visitors
reaching a site's capacity within the hour, ambulance calls exceeding capacity within two).

The model is river's ``time_series.HoltWinters`` with level and trend and no seasonality (Holt's
linear method), one per key. Readings are taken to come every ``every``; the forecast looks
⌊horizon / every⌋ readings ahead. A reading BREACHes when the forecast at any of those steps is at
or above the limit, CLEARs otherwise; the evidence says when the first crossing is due. The limit
is a number (``limit``) or the event's own field (``limit_field: capacity``). The first
``warmup`` readings only teach (HOLD). There is no hysteresis: a forecast hovering at the limit
fires and resolves by turns.

The reading being scored must be part of the forecast, but ``score_one`` may not teach the model
and ``learn_one`` comes after it. So ``score_one`` applies Holt's update for the reading to the
model's current level and trend by hand (``_holt_after``; a test checks it against river's
``learn_one``), which is far cheaper than learning on a deep copy of the model.

Readings must come in event-time order: Holt counts steps, so one older than the newest is
``late()`` and not used. An event without the field says nothing (``UNDECIDED``, a HOLD the
engine counts) and is not learned; one without the limit field says nothing (``UNDECIDED``)
but its value is learned.

State per key: the HoltWinters (its last two levels and trends), a count and the newest time;
407 bytes pickled after 1,000 readings, and it does not grow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator
from river import time_series

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
from models.durations import Duration, format_duration
from models.refdata import ModelEnv
from topics.codec import Event


class ForecastParams(KindParams):
    field: str
    """The numeric event field forecast."""
    limit: float | None = None
    """The limit as a number; or give ``limit_field``."""
    limit_field: str | None = None
    """The event field holding the limit (e.g. ``capacity``)."""
    horizon: Duration
    """How far ahead the forecast looks."""
    every: Duration
    """The expected interval between readings: horizon / every is the number of steps."""
    model: Literal["holt"] = "holt"
    alpha: float = Field(default=0.5, gt=0, le=1)
    """Holt's level smoothing: higher follows the latest reading more closely."""
    beta: float = Field(default=0.2, gt=0, le=1)
    """Holt's trend smoothing: higher reacts to a new trend faster (and to noise more)."""
    warmup: int = Field(default=6, ge=2)
    """Readings learned before any verdict."""

    @model_validator(mode="after")
    def _consistent(self) -> ForecastParams:
        if (self.limit is None) == (self.limit_field is None):
            raise ValueError("give exactly one of 'limit' (a number) and 'limit_field' "
                             "(an event field holding the limit)")
        if self.every <= 0 or self.horizon < self.every:
            raise ValueError("'every' must be positive and 'horizon' at least 'every'")
        return self


@pickled_by_position
@dataclass(slots=True)
class ForecastState:
    model: time_series.HoltWinters
    seen: int = 0
    last_ts: float | None = None


class Forecast(WarningModel[ForecastState]):
    """Breach when the forecast within ``horizon`` reaches the limit.

    >>> from topics.codec import Event
    >>> m = Forecast(ForecastParams(field="visitors_now", limit_field="capacity",
    ...                             horizon="1h", every="10m", warmup=3))
    >>> s = m.new_state()
    >>> out = []
    >>> for i, n in enumerate([1000, 1100, 1200, 1300, 1400, None]):
    ...     ev = Event("t", "k", 600.0 * i, {"visitors_now": n, "capacity": 2000})
    ...     out.append(m.score_one(s, ev)); m.learn_one(s, ev)
    >>> [r.verdict.value for r in out]
    ['hold', 'hold', 'hold', 'clear', 'breach', 'hold']
    >>> {k: out[4].evidence[k] for k in ("value", "limit", "forecast_peak", "crossing_in")}
    {'value': 1400, 'limit': 2000, 'forecast_peak': 2042.3, 'crossing_in': '1h'}
    """

    kind = "forecast"
    Params = ForecastParams
    evidence_fields = ("value", "limit", "forecast_peak", "horizon", "trend_per_step", "every",
                       "crossing_in", "crossing_in_s")
    event_fields = ("field", "limit_field")

    def __init__(self, params: ForecastParams, env: ModelEnv | None = None) -> None:
        super().__init__(params, env)
        self.steps = max(1, int(params.horizon / params.every + 1e-9))

    def new_state(self) -> ForecastState:
        p = self.params
        return ForecastState(time_series.HoltWinters(alpha=p.alpha, beta=p.beta))

    def score_one(self, state: ForecastState, event: Event) -> Reading:
        p = self.params
        raw = event.data.get(p.field)
        limit = p.limit if p.limit_field is None else event.data.get(p.limit_field)
        if raw is None or limit is None:
            return UNDECIDED
        value = learnable(raw)
        if value is None or learnable(limit) is None:
            return UNUSABLE
        if state.last_ts is not None and event.ts < state.last_ts:
            return late(state.last_ts - event.ts)
        if state.seen < p.warmup:
            return HOLD
        level, trend = _holt_after(state.model, value)
        path = [level + k * trend for k in range(1, self.steps + 1)]
        evidence: dict[str, Any] = {
            "value": event.data[p.field], "limit": limit,
            "forecast_peak": round(max(path), 3), "horizon": format_duration(p.horizon),
            "trend_per_step": round(trend, 3), "every": format_duration(p.every)}
        first = next((k for k, v in enumerate(path, start=1) if v >= limit), None)
        if first is None:
            return Reading(Verdict.CLEAR, evidence)
        evidence["crossing_in"] = format_duration(first * p.every)
        evidence["crossing_in_s"] = first * p.every
        return Reading(Verdict.BREACH, evidence)

    def learn_one(self, state: ForecastState, event: Event) -> None:
        value = learnable(event.data.get(self.params.field))
        if value is None or (state.last_ts is not None and event.ts < state.last_ts):
            return
        state.model.learn_one(value)
        state.seen += 1
        state.last_ts = event.ts

    def describe(self) -> dict[str, Any]:
        p = self.params
        return {"kind": self.kind, "field": p.field,
                "limit": p.limit if p.limit_field is None else p.limit_field,
                "horizon": format_duration(p.horizon), "every": format_duration(p.every),
                "steps": self.steps, "model": f"holt(alpha={p.alpha}, beta={p.beta})",
                "warmup": p.warmup}


def _holt_after(model: time_series.HoltWinters, y: float) -> tuple[float, float]:
    """Level and trend the model would have after learning ``y``, without changing it: river's
    additive level and trend updates. The model is initialised (it has seen two readings, the
    least warm-up)."""
    level, trend = model.level[-1], model.trend[-1]
    new_level = model.alpha * y + (1 - model.alpha) * (level + trend)
    return new_level, model.beta * (new_level - level) + (1 - model.beta) * trend
