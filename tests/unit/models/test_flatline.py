"""flatline: a stuck value — count and duration boundaries, tolerance, order, pickled state."""

import copy
import pickle
from pathlib import Path

import pytest

from engine.core import MemoryStore, ScoringCore
from engine.rule_files.loader import compile_rule_text
from models.base import Verdict
from models.flatline import Flatline, FlatlineParams
from tests.rulekit import FACILITY, rule, rule_text, tank
from topics.codec import Event


def ev(ts, value, field="x"):
    return Event("t", "k", float(ts), {field: value})


def feed(model, state, events):
    out = []
    for e in events:
        out.append(model.score_one(state, e))
        model.learn_one(state, e)
    return out


def verdicts(readings):
    return [r.verdict.value for r in readings]


def test_count_minus_one_identical_readings_is_clear_and_count_breaches():
    m = Flatline(FlatlineParams(field="x", count=4))
    out = feed(m, m.new_state(), [ev(t, 7.0) for t in range(5)])
    assert verdicts(out) == ["clear", "clear", "clear", "breach", "breach"]
    assert out[3].evidence == {"value": 7.0, "readings": 4, "since": 0.0, "stuck_s": 3.0,
                               "stuck_min": 0.05, "field": "x"}


def test_a_run_one_second_short_of_duration_is_clear_and_reaching_it_breaches():
    m = Flatline(FlatlineParams(field="x", duration="30m"))
    s = m.new_state()
    feed(m, s, [ev(0, 7.0)])
    assert m.score_one(s, ev(1799, 7.0)).verdict is Verdict.CLEAR
    assert m.score_one(s, ev(1800, 7.0)).verdict is Verdict.BREACH
    # Two readings half an hour apart are enough when only a duration is asked for.
    assert m.score_one(s, ev(1800, 7.0)).evidence["readings"] == 2


def test_with_count_and_duration_both_must_be_met():
    m = Flatline(FlatlineParams(field="x", count=3, duration="10m"))
    assert verdicts(feed(m, m.new_state(), [ev(0, 1.0), ev(60, 1.0), ev(120, 1.0),
                                            ev(599, 1.0), ev(600, 1.0)])) == [
        "clear", "clear", "clear", "clear", "breach"]
    assert verdicts(feed(m, m.new_state(), [ev(0, 1.0), ev(600, 1.0), ev(1200, 1.0)])) == [
        "clear", "clear", "breach"]


def test_a_different_value_clears_and_starts_a_new_run():
    m = Flatline(FlatlineParams(field="x", count=2))
    s = m.new_state()
    out = feed(m, s, [ev(0, 5.0), ev(1, 5.0), ev(2, 5.5), ev(3, 5.5)])
    assert verdicts(out) == ["clear", "breach", "clear", "breach"]
    assert out[2].evidence["readings"] == 1 and out[2].evidence["since"] == 2.0
    assert (s.since, s.length, s.low, s.high, s.newest) == (2.0, 2, 5.5, 5.5, 3.0)


def test_tolerance_bounds_the_spread_of_the_whole_run():
    m = Flatline(FlatlineParams(field="x", count=3, tolerance=0.1))
    out = feed(m, m.new_state(), [ev(0, 62.4), ev(1, 62.5), ev(2, 62.45), ev(3, 62.3),
                                  ev(4, 62.4), ev(5, 62.35)])
    # 62.4, 62.5, 62.45 spread 0.1 (rounding aside); 62.3 would make it 0.2, so it starts anew.
    assert verdicts(out) == ["clear", "clear", "breach", "clear", "clear", "breach"]
    assert (out[2].evidence["low"], out[2].evidence["high"], out[2].evidence["tolerance"]) == (
        62.4, 62.5, 0.1)
    assert (out[5].evidence["low"], out[5].evidence["high"], out[5].evidence["readings"]) == (
        62.3, 62.4, 3)


def test_with_no_tolerance_a_change_in_the_last_decimal_breaks_the_run():
    m = Flatline(FlatlineParams(field="x", count=2))
    assert verdicts(feed(m, m.new_state(), [ev(0, 62.4), ev(1, 62.400001)])) == [
        "clear", "clear"]


def test_missing_field_holds_and_neither_breaks_nor_extends_the_run():
    m = Flatline(FlatlineParams(field="x", count=3))
    s = m.new_state()
    out = feed(m, s, [ev(0, 1.0), Event("t", "k", 1.0, {"y": 2}), ev(2, None), ev(3, "n/a"),
                      ev(4, 1.0), ev(5, 1.0)])
    assert verdicts(out) == ["clear", "hold", "hold", "hold", "clear", "breach"]
    assert out[5].evidence["stuck_s"] == 5.0


def test_an_older_reading_is_late_and_not_used_but_the_same_time_counts():
    m = Flatline(FlatlineParams(field="x", count=3))
    s = m.new_state()
    feed(m, s, [ev(10, 1.0), ev(20, 1.0)])
    reading = m.score_one(s, ev(19.5, 1.0))
    assert (reading.verdict, reading.evidence) == (Verdict.LATE, {"late_by_s": 0.5})
    m.learn_one(s, ev(19.5, 2.0))
    assert (s.length, s.newest) == (2, 20.0)
    assert m.score_one(s, ev(20, 1.0)).verdict is Verdict.BREACH


def test_score_one_does_not_change_state():
    m = Flatline(FlatlineParams(field="x", count=2, tolerance=0.5))
    s = m.new_state()
    feed(m, s, [ev(0, 1.0), ev(1, 1.2)])
    before = copy.deepcopy(s)
    for event in (ev(2, 1.4), ev(2, 9.0), ev(0, 1.0), ev(3, None)):
        m.score_one(s, event)
    assert s == before


STREAM = [(0, 3.0), (60, 3.0), (120, 3.0), (100, 3.0), (180, 3.0), (240, None), (300, 3.05),
          (360, 4.0), (420, 4.0), (480, 4.0), (540, 4.0)]


@pytest.mark.parametrize("cut", [1, 3, 5, 7, 9])
def test_state_pickled_mid_stream_resumes_with_identical_readings(cut):
    m = Flatline(FlatlineParams(field="x", count=3, duration="2m", tolerance=0.05))
    events = [ev(t, v) for t, v in STREAM]
    straight = feed(m, m.new_state(), events)
    s = m.new_state()
    first = feed(m, s, events[:cut])
    resumed = pickle.loads(pickle.dumps(s))
    assert first + feed(m, resumed, events[cut:]) == straight
    assert verdicts(straight) == ["clear", "clear", "breach", "late", "breach", "hold", "breach",
                                  "clear", "clear", "breach", "breach"]


STUCK = {"id": "test.tank.level_stuck", "source": FACILITY, "kind": "flatline",
         "field": "level_pct", "duration": "30m", "count": 6,
         "summary": "{tank_id} stuck at {level_pct} for {stuck_min:.0f} min"}


def test_through_the_core_a_stuck_level_fires_and_a_new_value_resolves():
    late = []
    core = ScoringCore([rule(**STUCK)], MemoryStore(),
                       on_unused=lambda r, rd: late.append(rd.evidence["late_by_s"]))
    events = [tank(t * 300, level_pct=62.4) for t in range(7)]
    events += [tank(1000, level_pct=62.4), tank(2000, lel_pct=3.0), tank(2100, level_pct=62.5)]
    alerts = core.process(events)
    assert [(a.state, a.first_ts, a.last_ts, a.summary) for a in alerts] == [
        ("firing", 1800.0, 1800.0, "T1 stuck at 62.4 for 30 min"),
        ("resolved", 1800.0, 2100.0, "T1 stuck at 62.5 for 0 min")]
    assert alerts[0].evidence["readings"] == 7
    assert alerts[0].evidence["condition"] == {"kind": "flatline", "field": "level_pct",
                                               "tolerance": 0.0, "count": 6, "duration": "30m"}
    assert late == [800.0]


def test_the_loader_rejects_a_flatline_without_a_limit_or_with_bad_ones():
    assert compile_rule_text(rule_text(**STUCK), Path("r.yaml"))[1] == []
    for bad in ({"count": None, "duration": None}, {"count": 1}, {"duration": "0s"},
                {"tolerance": -0.1}, {"field": "level"}):
        fields = {k: v for k, v in (STUCK | bad).items() if v is not None}
        compiled, errors = compile_rule_text(rule_text(**fields), Path("r.yaml"))
        assert compiled is None and len(errors) == 1, (bad, errors)
