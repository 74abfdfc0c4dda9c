"""forecast: a ramp fires where its forecast first reaches the limit, flat series never do, Holt
by hand equals river's, pickled state, missing fields, the scoring core."""

import copy
import pickle

import numpy as np
import pytest
from pydantic import ValidationError
from river import time_series

from engine.core import MemoryStore, ScoringCore
from models.base import Verdict
from models.forecast import Forecast, ForecastParams, _holt_after
from tests.rulekit import event, rule
from topics.codec import Event

STEP = 300.0  # a reading every 5 minutes
HOUR_AHEAD = {"horizon": "1h", "every": "5m"}  # 12 steps
SITE = "events.tourism.site"


def feed(model, state, values, limit=None, start=0):
    """Score then learn a reading every 5 minutes, like the engine; the readings."""
    out = []
    for i, value in enumerate(values, start=start):
        data = {"v": value} if limit is None else {"v": value, "cap": limit}
        e = Event("t", "k", i * STEP, data)
        out.append(model.score_one(state, e))
        model.learn_one(state, e)
    return out


def verdicts(readings):
    return [r.verdict.value for r in readings]


def test_a_linear_ramp_fires_at_the_first_reading_whose_forecast_reaches_the_limit():
    """Readings 100, 110, 120 … (10 per 5 min), limit 505, 12 steps ahead. On an exact ramp
    Holt's level converges to the reading and its trend to 10, so from reading t the forecast
    12 steps ahead is (100 + 10t) + 120. That is 500 at t = 28 (short of 505) and 510 at t = 29:
    the first breach, with the crossing at step 12 (390 + 10k >= 505 first at k = 12, 1 h).
    At t = 30 the crossing is at k = 11 (400 + 110 = 510), 55 min."""
    model = Forecast(ForecastParams(field="v", limit=505, **HOUR_AHEAD))
    state = model.new_state()
    readings = feed(model, state, [100.0 + 10 * t for t in range(32)])

    assert verdicts(readings[:6]) == ["hold"] * 6  # warm-up
    assert verdicts(readings[6:29]) == ["clear"] * 23
    assert verdicts(readings[29:]) == ["breach"] * 3
    assert readings[28].evidence["forecast_peak"] == pytest.approx(500, abs=0.01)
    assert readings[28].evidence["trend_per_step"] == pytest.approx(10, abs=0.01)
    fired = readings[29].evidence
    assert fired["value"] == 390.0 and fired["limit"] == 505 and fired["horizon"] == "1h"
    assert fired["forecast_peak"] == pytest.approx(510, abs=0.01)
    assert (fired["crossing_in"], fired["crossing_in_s"]) == ("1h", 3600.0)
    assert readings[30].evidence["crossing_in"] == "55m"


def test_a_flat_noisy_series_below_the_limit_never_fires():
    rng = np.random.default_rng(0)
    values = [float(v) for v in 3000 + rng.normal(0, 100, 7 * 288)]  # a week; 3% noise
    model = Forecast(ForecastParams(field="v", limit_field="cap", **HOUR_AHEAD))
    readings = feed(model, model.new_state(), values, limit=5000)
    assert set(verdicts(readings[6:])) == {"clear"}
    assert max(r.evidence["forecast_peak"] for r in readings[6:]) < 5000


def test_the_hand_made_holt_step_is_river_learn_one():
    rng = np.random.default_rng(1)
    model = time_series.HoltWinters(alpha=0.3, beta=0.15)
    model.learn_one(10.0)
    model.learn_one(12.0)
    for y in rng.normal(50, 20, 200):
        expected = copy.deepcopy(model)
        expected.learn_one(float(y))
        assert _holt_after(model, float(y)) == pytest.approx(
            (expected.level[-1], expected.trend[-1]), rel=1e-12)
        model.learn_one(float(y))


def test_scoring_changes_nothing_and_state_pickled_mid_stream_resumes_identically():
    values = [1000.0 + 40 * t + 30 * (-1) ** t for t in range(60)]
    model = Forecast(ForecastParams(field="v", limit=3000, **HOUR_AHEAD))
    state = model.new_state()
    feed(model, state, values[:20])
    before = pickle.dumps(state)
    model.score_one(state, Event("t", "k", 20 * STEP, {"v": 99999.0}))
    assert pickle.dumps(state) == before

    restored = pickle.loads(before)
    rest = feed(model, state, values[20:], start=20)
    again = feed(model, restored, values[20:], start=20)
    assert [(r.verdict, r.evidence) for r in rest] == [(r.verdict, r.evidence) for r in again]
    assert "breach" in verdicts(rest)


def test_missing_fields_hold_and_a_late_reading_is_late():
    model = Forecast(ForecastParams(field="v", limit_field="cap", **HOUR_AHEAD, warmup=2))
    state = model.new_state()
    feed(model, state, [10.0, 20.0], limit=100)
    no_value = Event("t", "k", 600, {"cap": 100})
    assert model.score_one(state, no_value).verdict is Verdict.HOLD
    model.learn_one(state, no_value)
    assert state.seen == 2
    no_limit = Event("t", "k", 600, {"v": 30.0})
    assert model.score_one(state, no_limit).verdict is Verdict.HOLD
    model.learn_one(state, no_limit)  # the value still teaches the trend
    assert state.seen == 3
    late = model.score_one(state, Event("t", "k", 0, {"v": 1.0, "cap": 100}))
    assert (late.verdict, late.evidence) == (Verdict.LATE, {"late_by_s": 600.0})


def test_parameters():
    with pytest.raises(ValidationError, match="exactly one of 'limit'"):
        ForecastParams(field="v", **HOUR_AHEAD)
    with pytest.raises(ValidationError, match="exactly one of 'limit'"):
        ForecastParams(field="v", limit=1, limit_field="cap", **HOUR_AHEAD)
    with pytest.raises(ValidationError, match="at least 'every'"):
        ForecastParams(field="v", limit=1, horizon="5m", every="10m")
    assert Forecast(ForecastParams(field="v", limit=1, horizon="2h", every="7m")).steps == 17


def test_state_is_a_few_hundred_bytes_and_does_not_grow():
    model = Forecast(ForecastParams(field="v", limit=1e9, **HOUR_AHEAD))
    state = model.new_state()
    feed(model, state, [float(v) for v in range(1000)])
    size = len(pickle.dumps(state))
    feed(model, state, [float(v) for v in range(1000, 2000)], start=1000)
    print("forecast state bytes", size)
    assert size < 450 and len(pickle.dumps(state)) == size


def test_through_the_scoring_core_a_site_filling_up_alerts_once_with_its_forecast():
    capacity = rule(id="test.site.capacity_forecast", source=SITE, kind="forecast",
                    field="visitors_now", limit_field="capacity", horizon="1h", every="5m",
                    summary="{visitors_now} of {limit}, peak {forecast_peak:.0f}")
    core = ScoringCore([capacity], MemoryStore())
    counts = [2050 + 150 * i for i in range(10)] + [3500, 3520, 3510, 3530]
    alerts = []
    for i, n in enumerate(counts):
        alerts += core.process([event(SITE, i * STEP, site_id="S1", visitors_now=n,
                                      capacity=5000)])
        alerts += core.process([event(SITE, i * STEP, site_id="S2", capacity=5000)])
    assert [(a.key, a.state, a.last_ts) for a in alerts] == [
        ("S1", "firing", 8 * STEP), ("S1", "resolved", 12 * STEP)]
    evidence = alerts[0].evidence
    assert evidence.keys() >= {"value", "limit", "forecast_peak", "crossing_in", "horizon"}
    assert (evidence["value"], evidence["limit"], evidence["crossing_in"]) == (3250, 5000, "1h")
    assert evidence["condition"]["steps"] == 12
    assert alerts[0].summary == "3250 of 5000, peak 5124"
