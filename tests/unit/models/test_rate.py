"""rate: change within a time span — boundaries, derived values, lateness, pickled state."""

import copy
import pickle
from pathlib import Path

import pytest

from engine.core import MemoryStore, ScoringCore
from engine.rule_files.loader import compile_rule_text
from models.base import Verdict
from models.rate import Rate, RateParams
from tests.rulekit import VEHICLE, rule, rule_text, vehicle
from topics.codec import Event


def ev(ts, value, field="x"):
    return Event("t", "k", float(ts), {field: value})


def feed(model, state, events):
    """Score then learn each event, like the engine; the readings."""
    out = []
    for e in events:
        out.append(model.score_one(state, e))
        model.learn_one(state, e)
    return out


def verdicts(readings):
    return [r.verdict.value for r in readings]


BRAKING = {"field": "x", "within": "3s", "condition": "fall > 30"}


def test_a_fall_of_exactly_30_is_clear_and_one_of_30_5_breaches():
    m = Rate(RateParams(**BRAKING))
    assert verdicts(feed(m, m.new_state(), [ev(0, 80.0), ev(3, 50.0)])) == ["hold", "clear"]
    assert verdicts(feed(m, m.new_state(), [ev(0, 80.0), ev(3, 49.5)])) == ["hold", "breach"]


def test_a_reading_exactly_within_old_counts_and_one_a_millisecond_older_does_not():
    m = Rate(RateParams(**BRAKING))
    assert verdicts(feed(m, m.new_state(), [ev(0, 80.0), ev(3, 40.0)])) == ["hold", "breach"]
    assert verdicts(feed(m, m.new_state(), [ev(0, 80.0), ev(3.001, 40.0)])) == ["hold", "hold"]


def test_every_derived_value_is_exact():
    m = Rate(RateParams(field="x", within="10m", condition="delta > 0"))
    s = m.new_state()
    feed(m, s, [ev(0, 40.0), ev(60, 50.0), ev(120, 30.0)])
    reading = m.score_one(s, ev(240, 60.0))
    assert reading.verdict is Verdict.BREACH
    assert reading.evidence == {
        "value": 60.0, "previous": 30.0, "delta": 20.0, "rise": 30.0, "fall": -10.0,
        "rate_per_s": 20.0 / 240, "rate_per_min": 5.0, "pct_change": 50.0,
        "elapsed_s": 240.0, "earlier": 3, "field": "x", "within": "10m"}


def test_pct_change_is_null_when_the_oldest_reading_is_zero():
    m = Rate(RateParams(field="x", within="1d", condition="pct_change >= 20"))
    s = m.new_state()
    feed(m, s, [ev(0, 0.0)])
    assert m.score_one(s, ev(60, 5.0)).verdict is Verdict.HOLD  # undecided, not clear
    either = Rate(RateParams(field="x", within="1d", condition="pct_change >= 20 || delta > 4"))
    reading = either.score_one(s, ev(60, 5.0))
    assert (reading.verdict, reading.evidence["pct_change"]) == (Verdict.BREACH, None)
    assert verdicts(feed(m, m.new_state(), [ev(0, 5.0), ev(60, 6.0)])) == ["hold", "breach"]
    assert verdicts(feed(m, m.new_state(), [ev(0, 5.0), ev(60, 5.95)])) == ["hold", "clear"]


def test_no_earlier_reading_holds_unless_the_clear_condition_tests_for_it():
    plain = Rate(RateParams(**BRAKING, clear="fall <= 10"))
    assert plain.score_one(plain.new_state(), ev(0, 50.0)).verdict is Verdict.HOLD
    explicit = Rate(RateParams(**BRAKING, clear="previous == null || fall <= 10"))
    reading = explicit.score_one(explicit.new_state(), ev(0, 50.0))
    assert (reading.verdict, reading.evidence["previous"], reading.evidence["earlier"]) == (
        Verdict.CLEAR, None, 0)


def test_the_clear_condition_makes_a_band():
    m = Rate(RateParams(**BRAKING, clear="fall <= 10"))
    out = feed(m, m.new_state(), [ev(0, 80.0), ev(1, 60.0), ev(2, 45.0), ev(5, 30.0),
                                  ev(8, 25.0)])
    assert verdicts(out) == ["hold", "band", "breach", "band", "clear"]


def test_missing_or_non_numeric_field_holds_and_is_not_learned():
    m = Rate(RateParams(**BRAKING))
    s = m.new_state()
    feed(m, s, [ev(0, 80.0)])
    for event in (Event("t", "k", 1.0, {}), ev(1, None), ev(1, "fast"), ev(1, True)):
        assert m.score_one(s, event).verdict is Verdict.HOLD
        m.learn_one(s, event)
    assert s.readings == [(0.0, 80.0)]


def test_out_of_order_within_lateness_is_judged_on_what_came_before_it_and_then_inserted():
    m = Rate(RateParams(**BRAKING, lateness="2s"))
    s = m.new_state()
    feed(m, s, [ev(10, 80.0), ev(14, 79.0)])
    # 12 s arrives after 14 s: it is compared with 10 s only (80 -> 45 is a fall of 35).
    reading = m.score_one(s, ev(12, 45.0))
    assert (reading.verdict, reading.evidence["fall"], reading.evidence["earlier"]) == (
        Verdict.BREACH, 35.0, 1)
    m.learn_one(s, ev(12, 45.0))
    assert s.readings == [(10.0, 80.0), (12.0, 45.0), (14.0, 79.0)]
    # The next reading sees it in its window (12 s and 14 s are within 3 s of 15 s).
    evidence = m.score_one(s, ev(15, 40.0)).evidence
    assert evidence.items() >= {"fall": 39.0, "rise": -5.0, "previous": 79.0,
                                "earlier": 2}.items()


def test_a_reading_exactly_lateness_behind_is_used_and_one_further_back_is_late():
    m = Rate(RateParams(**BRAKING, lateness="2s"))
    s = m.new_state()
    feed(m, s, [ev(10, 80.0), ev(14, 79.0)])
    assert m.score_one(s, ev(12, 79.0)).verdict is Verdict.CLEAR
    reading = m.score_one(s, ev(11.5, 0.0))
    assert (reading.verdict, reading.evidence) == (Verdict.LATE, {"late_by_s": 2.5})
    m.learn_one(s, ev(11.5, 0.0))
    assert s.readings == [(10.0, 80.0), (14.0, 79.0)]


def test_without_lateness_any_older_reading_is_late_but_the_same_time_is_not():
    m = Rate(RateParams(**BRAKING))
    s = m.new_state()
    feed(m, s, [ev(10, 80.0)])
    assert m.score_one(s, ev(9.5, 40.0)).evidence == {"late_by_s": 0.5}
    assert m.score_one(s, ev(10, 40.0)).verdict is Verdict.BREACH


def test_state_keeps_only_within_plus_lateness_behind_the_newest():
    m = Rate(RateParams(**BRAKING, lateness="1s"))
    s = m.new_state()
    feed(m, s, [ev(t, 50.0 + t) for t in range(10)])
    assert [t for t, _ in s.readings] == [5.0, 6.0, 7.0, 8.0, 9.0]


def test_score_one_does_not_change_state():
    m = Rate(RateParams(**BRAKING, lateness="5s"))
    s = m.new_state()
    feed(m, s, [ev(0, 80.0), ev(1, 70.0), ev(4, 60.0)])
    before = copy.deepcopy(s)
    for event in (ev(5, 10.0), ev(2, 10.0), ev(-10, 1.0), ev(6, None)):
        m.score_one(s, event)
    assert s == before


SPEEDS = [(0, 80.0), (1, 78.0), (2, 60.0), (3, 47.0), (2.5, 70.0), (4, 45.0), (1, 10.0),
          (5, 45.0), (6, 44.0), (9, 80.0), (10, 40.0)]


@pytest.mark.parametrize("cut", [1, 4, 5, 7, 10])
def test_state_pickled_mid_stream_resumes_with_identical_readings(cut):
    m = Rate(RateParams(**BRAKING, clear="fall <= 10", lateness="1s"))
    events = [ev(t, v) for t, v in SPEEDS]
    straight = feed(m, m.new_state(), events)
    s = m.new_state()
    first = feed(m, s, events[:cut])
    resumed = pickle.loads(pickle.dumps(s))
    assert first + feed(m, resumed, events[cut:]) == straight
    assert verdicts(straight) == ["hold", "clear", "band", "breach", "clear", "breach", "late",
                                  "band", "clear", "clear", "breach"]


HARSH = {"id": "test.vehicle.harsh_braking", "source": VEHICLE, "kind": "rate",
         "field": "speed_kmh", "within": "3s", "condition": "fall > 30",
         "summary": "{plate} fell {fall:.0f} km/h to {speed_kmh:.0f}"}


def test_through_the_core_a_harsh_brake_fires_once_and_resolves():
    late_by = []
    core = ScoringCore([rule(**HARSH, lateness="1s")], MemoryStore(),
                       on_unused=lambda r, rd: late_by.append((r.id, rd.evidence["late_by_s"])))
    speeds = [(0, 80), (1, 79), (2, 65), (3, 49), (4, 40), (3.5, 45), (2.5, 60), (5, 38),
              (3, 30)]
    alerts = core.process([vehicle(t, speed_kmh=v, plate="浙A1") for t, v in speeds])
    assert [(a.state, a.first_ts, a.last_ts, a.summary) for a in alerts] == [
        ("firing", 3.0, 3.0, "浙A1 fell 31 km/h to 49"),
        ("resolved", 3.0, 5.0, "浙A1 fell 27 km/h to 38")]
    assert alerts[0].evidence["condition"] == {
        "kind": "rate", "field": "speed_kmh", "within": "3s", "condition": "fall > 30",
        "clear": "not (fall > 30)"}
    assert late_by == [("test.vehicle.harsh_braking", 1.5), ("test.vehicle.harsh_braking", 2.0)]


def test_through_the_core_vehicles_are_kept_apart():
    core = ScoringCore([rule(**HARSH)], MemoryStore())
    alerts = core.process([vehicle(0, "V1", speed_kmh=80), vehicle(1, "V2", speed_kmh=40),
                           vehicle(2, "V1", speed_kmh=79)])
    assert alerts == []


def test_the_loader_names_unknown_variables_and_rejects_bad_parameters():
    text = rule_text(**HARSH | {"condition": "fal > 30 && speed_kmh > 0"})
    _, errors = compile_rule_text(text, Path("r.yaml"))
    assert [e.message for e in errors] == [
        "unknown name 'fal', 'speed_kmh' in condition; a rate condition uses value, previous, "
        "delta, rise, fall, rate_per_s, rate_per_min, pct_change, elapsed_s, earlier"]
    for bad in ({"within": "0s"}, {"lateness": -1}, {"condition": "fall >"},
                {"field": "speed"}):
        rule_, errors = compile_rule_text(rule_text(**HARSH | bad), Path("r.yaml"))
        assert rule_ is None and len(errors) == 1, (bad, errors)
