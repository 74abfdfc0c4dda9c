"""drift: river detectors on a field — where they fire, direction, grace, order, pickled state.

The indices below were found by running the detectors on these exact series; they pin river's
behaviour (0.26.1) as much as ours.
"""

import math
import pickle
from pathlib import Path

import pytest

from engine.core import MemoryStore, ScoringCore
from engine.rule_files.loader import compile_rule_text
from models.base import Verdict
from models.drift import Drift, DriftParams
from tests.rulekit import event, rule, rule_text
from topics.codec import Event

SENSOR = "events.utilities.sensor"
PH = {"field": "value", "detector": "page_hinkley", "delta": 2.5, "threshold": 20}
ADWIN = {"field": "value", "detector": "adwin"}


def ev(ts, value, field="value"):
    return Event("t", "k", float(ts), {field: value})


def feed(model, state, events):
    out = []
    for e in events:
        out.append(model.score_one(state, e))
        model.learn_one(state, e)
    return out


def run(params, values, step=600.0):
    m = Drift(DriftParams(**params))
    s = m.new_state()
    return feed(m, s, [ev(i * step, v) for i, v in enumerate(values)]), s


def breaches(readings):
    return [i for i, r in enumerate(readings) if r.verdict is Verdict.BREACH]


def test_page_hinkley_fires_at_the_fifth_reading_of_a_7_degree_step_then_clears():
    out, state = run(PH, [45.0] * 60 + [38.0] * 10)
    assert breaches(out) == [64]
    assert out[63].verdict is Verdict.CLEAR and out[65].verdict is Verdict.CLEAR
    assert out[64].evidence == {
        "value": 38.0, "field": "value", "detector": "page_hinkley", "mean_before": 45.0,
        "mean_after": 38.0, "shift": -7.0, "direction": "down", "readings_before": 60,
        "readings_after": 5}
    # The detector and the regime start afresh; clear readings repeat the shift's levels.
    assert out[65].evidence == {"value": 38.0, "field": "value", "detector": "page_hinkley",
                                "mean": 38.0, "mean_before": 45.0, "mean_after": 38.0}
    assert out[1].evidence == {"value": 45.0, "field": "value", "detector": "page_hinkley",
                               "mean": 45.0}
    assert state.n == 5


@pytest.mark.parametrize(("step", "fires_at"), [(7.0, [64]), (5.0, [69]), (4.0, [82]),
                                                (3.5, []), (3.0, [])])
def test_page_hinkley_step_size_boundary(step, fires_at):
    down, _ = run(PH, [45.0] * 60 + [45.0 - step] * 200)
    up, _ = run(PH, [45.0] * 60 + [45.0 + step] * 200)
    assert breaches(down) == breaches(up) == fires_at


def test_a_daily_swing_of_two_degrees_stays_silent_for_twenty_days():
    out, _ = run(PH, [45.0 + 2.0 * math.sin(2 * math.pi * i / 144) for i in range(144 * 20)])
    assert breaches(out) == []


def test_no_shift_is_signalled_during_the_grace_readings():
    out, _ = run(PH, [45.0] * 10 + [38.0] * 40)
    assert breaches(out) == [29]  # the 30th reading is the first the detector may judge
    assert (out[29].evidence["readings_before"], out[29].evidence["readings_after"]) == (10, 20)
    # With grace 5 the detector judges at once, but a mean of only 10 readings follows the step
    # fast: the j-th reading at 38 adds 70 / (10 + j) - 2.5, which passes 20 at j = 9.
    out, _ = run(PH | {"grace": 5}, [45.0] * 10 + [38.0] * 40)
    assert breaches(out) == [18]


def test_each_shift_is_its_own_episode():
    out, _ = run(PH, [45.0] * 60 + [38.0] * 60 + [45.0] * 60)
    assert breaches(out) == [64, 124]
    second = out[124].evidence
    assert (second["mean_before"], second["mean_after"], second["direction"],
            second["readings_before"], second["readings_after"]) == (38.0, 45.0, "up", 55, 5)


def test_page_hinkley_watches_only_the_direction_asked_for():
    up_step = [45.0] * 60 + [52.0] * 60
    assert breaches(run(PH | {"direction": "down"}, up_step)[0]) == []
    assert breaches(run(PH | {"direction": "up"}, up_step)[0]) == [64]


def test_adwin_fires_on_the_step_and_a_shift_against_direction_only_restarts_it():
    out, state = run(ADWIN, [45.0] * 60 + [38.0] * 30)
    assert breaches(out) == [66]
    assert (out[66].evidence["mean_before"], out[66].evidence["mean_after"],
            out[66].evidence["readings_after"]) == (45.0, 38.0, 7)
    out, state = run(ADWIN | {"direction": "up"}, [45.0] * 60 + [38.0] * 30)
    assert breaches(out) == []
    assert out[66].evidence["direction"] == "down" and out[66].verdict is Verdict.CLEAR
    assert (state.n, state.detector.width) == (23, 23)  # restarted at reading 67
    out, _ = run(ADWIN, [0.2] * 60 + [0.8] * 30)
    assert breaches(out) == [89]
    assert out[89].evidence["readings_before"] == 60


def test_missing_field_holds_and_is_not_learned():
    m = Drift(DriftParams(**PH))
    s = m.new_state()
    feed(m, s, [ev(0, 45.0)])
    for e in (Event("t", "k", 1.0, {}), ev(1, None), ev(1, "hot"), ev(1, False)):
        assert m.score_one(s, e).verdict is Verdict.HOLD
        m.learn_one(s, e)
    assert (s.n, s.newest) == (1, 0.0)


def test_an_older_reading_is_late_and_not_used_but_the_same_time_counts():
    m = Drift(DriftParams(**PH))
    s = m.new_state()
    feed(m, s, [ev(600, 45.0)])
    reading = m.score_one(s, ev(300, 45.0))
    assert (reading.verdict, reading.evidence) == (Verdict.LATE, {"late_by_s": 300.0})
    m.learn_one(s, ev(300, 45.0))
    assert s.n == 1
    assert m.score_one(s, ev(600, 44.0)).evidence["mean"] == 44.5


@pytest.mark.parametrize("params", [PH, ADWIN], ids=["page_hinkley", "adwin"])
def test_score_one_does_not_change_state(params):
    m = Drift(DriftParams(**params))
    s = m.new_state()
    feed(m, s, [ev(i, 45.0) for i in range(60)] + [ev(60 + i, 38.0) for i in range(4)])
    before = pickle.dumps(s)
    for e in (ev(100, 38.0), ev(100, 10.0), ev(1, 45.0), ev(100, None)):
        m.score_one(s, e)
    assert pickle.dumps(s) == before


@pytest.mark.parametrize("params", [PH, ADWIN], ids=["page_hinkley", "adwin"])
@pytest.mark.parametrize("cut", [1, 30, 63, 65, 67, 100])
def test_state_pickled_mid_stream_resumes_with_identical_readings(params, cut):
    m = Drift(DriftParams(**params))
    values = [45.0] * 60 + [38.0] * 30 + [46.0] * 40
    events = [ev(i * 600, v) for i, v in enumerate(values)]
    events.insert(70, ev(100, 45.0))  # one late reading
    straight = feed(m, m.new_state(), events)
    s = m.new_state()
    first = feed(m, s, events[:cut])
    resumed = pickle.loads(pickle.dumps(s))
    assert first + feed(m, resumed, events[cut:]) == straight
    assert straight[70].verdict is Verdict.LATE
    assert len(breaches(straight)) == 2


RETURN_SHIFT = {"id": "test.heating.return_shift", "source": SENSOR, "kind": "drift",
                "where": 'network == "heat" && metric == "return_temp_c"', **PH,
                "summary": "{sensor_id} {mean_before:.1f} -> {mean_after:.1f}"}


def heat(ts, value, metric="return_temp_c", sensor_id="HR1"):
    return event(SENSOR, ts, sensor_id=sensor_id, network="heat", metric=metric, value=value)


def test_through_the_core_a_step_fires_and_resolves_and_other_metrics_are_not_seen():
    core = ScoringCore([rule(**RETURN_SHIFT)], MemoryStore())
    events = []
    for i, temp in enumerate([45.0] * 60 + [38.0] * 6):
        events.append(heat(i * 600, temp))
        events.append(heat(i * 600 + 1, 70.0 + (i % 2) * 10, metric="supply_temp_c"))
    alerts = core.process(events)
    assert [(a.state, a.first_ts, a.last_ts, a.summary) for a in alerts] == [
        ("firing", 38_400.0, 38_400.0, "HR1 45.0 -> 38.0"),
        ("resolved", 38_400.0, 39_000.0, "HR1 45.0 -> 38.0")]
    assert alerts[0].evidence["condition"] == {
        "kind": "drift", "field": "value", "detector": "page_hinkley", "grace": 30,
        "direction": "both", "delta": 2.5, "threshold": 20.0}


def test_the_loader_rejects_options_that_do_not_fit_the_detector():
    assert compile_rule_text(rule_text(**RETURN_SHIFT), Path("r.yaml"))[1] == []
    for bad in ({"detector": "adwin"}, {"detector": "adwin", "threshold": None, "delta": 1.5},
                {"detector": "kswin"}, {"grace": 0}, {"direction": "sideways"},
                {"field": "temp"}):
        fields = {k: v for k, v in (RETURN_SHIFT | bad).items() if v is not None}
        compiled, errors = compile_rule_text(rule_text(**fields), Path("r.yaml"))
        assert compiled is None and len(errors) == 1, (bad, errors)
