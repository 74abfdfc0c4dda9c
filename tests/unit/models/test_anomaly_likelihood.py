"""The ``anomaly`` kind's default: a seasonal baseline judged by the anomaly likelihood. It stays
silent on a normal series for weeks — whatever its noise — and alerts once on each common shape
of anomaly."""

from __future__ import annotations

import math
import pickle
import random

import numpy
import pytest

from models.anomaly import Anomaly, AnomalyParams
from models.base import Verdict
from topics.codec import Event, local_hour_weekday

STEP = 300.0
START = 1_717_171_200.0  # a local midnight
DAY = int(86400 / STEP)


def sensor(days: int = 21, sigma: float = 2.0, seed: int = 3) -> list[float]:
    """Five-minute readings with a daily rhythm, quieter weekends and AR(1) noise."""
    rng = random.Random(seed)
    values, ar = [], 0.0
    for i in range(days * DAY):
        day = (i % DAY) / DAY
        weekend = (i // DAY) % 7 in (5, 6)
        rhythm = 10 * math.sin(2 * math.pi * (day - 0.25)) * (0.6 if weekend else 1.0)
        ar = 0.5 * ar + rng.gauss(0, sigma * math.sqrt(0.75))
        values.append(100 + rhythm + ar)
    return values


def run(values: list[float], step: float = STEP, **params: object) -> list[Verdict]:
    """The verdicts of one key's readings, ``step`` seconds apart."""
    model = Anomaly(AnomalyParams(field="value", **params))  # type: ignore[arg-type]
    state = model.new_state()
    verdicts = []
    for i, value in enumerate(values):
        ts = START + step * i
        hour, weekday = local_hour_weekday(ts)
        event = Event("sensor", "S1", ts, {"value": value, "hour": hour, "weekday": weekday})
        verdicts.append(model.score_one(state, event).verdict)
        model.learn_one(state, event)
    return verdicts


def episodes(verdicts: list[Verdict]) -> list[int]:
    """Where breaches begin (after anything but a breach or the band)."""
    starts, inside = [], False
    for i, verdict in enumerate(verdicts):
        if verdict is Verdict.BREACH and not inside:
            starts.append(i)
        inside = verdict in (Verdict.BREACH, Verdict.BAND) and (inside or
                                                                 verdict is Verdict.BREACH)
    return starts


@pytest.mark.parametrize("sigma", [0.5, 2.0, 6.0])
def test_three_weeks_of_a_normal_sensor_raise_no_alert_and_the_first_week_is_learned(sigma):
    verdicts = run(sensor(sigma=sigma))
    assert all(v is Verdict.HOLD for v in verdicts[:7 * DAY])
    assert episodes(verdicts) == []


@pytest.mark.parametrize(("shape", "where"), [
    ("spike", 15 * DAY + 40), ("level_up", 14 * DAY), ("level_down", 14 * DAY),
    ("stuck", 14 * DAY + 100), ("variance", 15 * DAY)])
def test_each_shape_of_anomaly_alerts_once_near_its_start(shape, where):
    values = sensor()
    if shape == "spike":
        values[where] += 25
    elif shape in ("level_up", "level_down"):
        for i in range(where, len(values)):
            values[i] += 12 if shape == "level_up" else -12
    elif shape == "stuck":
        for i in range(where, where + 150):
            values[i] = values[where]
    else:
        rng = random.Random(9)
        for i in range(where, where + 150):
            values[i] += rng.gauss(0, 10)
    found = episodes(run(values))
    assert len(found) >= 1 and where <= found[0] <= where + 24, found
    assert all(start < where + 600 for start in found), found  # no false alarms later


def test_a_slow_drift_alerts_within_a_day_of_its_start():
    values = sensor()
    start = 12 * DAY
    for i in range(start, len(values)):
        values[i] += 16 * min(1.0, (i - start) / 1500)
    found = episodes(run(values))
    assert len(found) == 1 and start <= found[0] <= start + DAY, found


def test_the_state_pickles_mid_stream_and_resumes_identically():
    values = sensor(days=10)
    model = Anomaly(AnomalyParams(field="value"))
    state = model.new_state()

    def feed(state, part):
        out = []
        for i in part:
            ts = START + STEP * i
            hour, weekday = local_hour_weekday(ts)
            event = Event("sensor", "S1", ts, {"value": values[i], "hour": hour,
                                               "weekday": weekday})
            out.append(model.score_one(state, event))
            model.learn_one(state, event)
        return out

    feed(state, range(8 * DAY))
    copy = pickle.loads(pickle.dumps(state))
    assert len(pickle.dumps(state)) < 8_000
    rest = range(8 * DAY, 10 * DAY)
    assert feed(state, rest) == feed(copy, rest)


def test_parameters_of_river_detectors_are_errors_with_the_default():
    with pytest.raises(ValueError, match="'quantile': used only by detectors gaussian"):
        AnomalyParams(field="p", quantile=0.99)
    with pytest.raises(ValueError, match="'clear_at' must be above 'epsilon'"):
        AnomalyParams(field="p", epsilon=1e-3, clear_at=1e-4)
    with pytest.raises(ValueError, match="'direction': used only by detector seasonal"):
        AnomalyParams(field="p", detector="gaussian", direction="up")


@pytest.mark.parametrize("direction", ["up", "down"])
def test_a_one_sided_rule_alerts_on_its_side_only_and_the_other_side_leaves_no_echo(direction):
    """An hour of readings far above usual and, days later, an hour far below: ``up`` alerts
    on the first only, ``down`` on the second only; the other is kept out of what is usual, so
    the usual readings after it are no echo."""
    values = sensor()
    shift_at, drop_at = 14 * DAY, 18 * DAY
    for i in range(shift_at, shift_at + 12):
        values[i] += 40
    for i in range(drop_at, drop_at + 12):
        values[i] -= 40
    found = episodes(run(values, direction=direction))
    expected_at = shift_at if direction == "up" else drop_at
    assert len(found) == 1 and expected_at <= found[0] <= expected_at + 24, found


def test_counts_judged_as_counts_stay_silent_where_a_gaussian_reading_would_cry_wolf():
    """Quarter-hour counts of a few visits (Poisson, busier by day): judged as measurements,
    the heavy upper tail of small counts raises alerts on chance; judged as counts it does
    not — and a surge of four times the usual count still alerts at once."""
    rng = numpy.random.default_rng(5)
    means = [2 + 10 * max(0.0, math.sin(math.pi * ((i % 96) / 96 - 0.25))) ** 2
             for i in range(96 * 42)]
    counts = [float(rng.poisson(m)) for m in means]

    def verdicts(values: list[float], **params: object) -> list[Verdict]:
        return run(values, step=900.0, direction="up", **params)

    as_measurements = episodes(verdicts(counts))
    as_counts = episodes(verdicts(counts, counts=True))
    assert as_counts == [] and len(as_measurements) > len(as_counts), as_measurements
    surge_at = 96 * 40 + 50  # a busy quarter hour
    surged = [*counts[:surge_at], 4 * means[surge_at] + 10, *counts[surge_at + 1:]]
    assert episodes(verdicts(surged, counts=True)) == [surge_at]
