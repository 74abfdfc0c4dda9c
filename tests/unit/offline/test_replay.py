"""Replay runs the core over JSONL in event time; bad lines are reported and skipped, events a
rule could not use are counted."""

import math

import orjson
import pytest

from engine.offline.replay import replay
from tests.rulekit import FACILITY, VEHICLE, rule

T0 = 1717372800.0  # 2024-06-03T00:00:00Z


def line(topic, **value):
    return orjson.dumps({"topic": topic, "key": value.get("tank_id"), "value": value})


def test_replay_scores_envelopes_and_reports_bad_lines_with_numbers():
    high = rule(id="test.tank.high", source=FACILITY, kind="threshold",
                condition="level_pct >= 90")
    lost = rule(id="test.vehicle.lost", source=VEHICLE, kind="absence", timeout="5m")
    base = {"facility_id": "F1", "tank_id": "T1"}
    lines = [
        line(FACILITY, event_id="1", ts=T0, level_pct=95, **base),
        b"{broken",
        b"",
        orjson.dumps({"value": {}}),
        line(VEHICLE, event_id="2", ts=T0 + 10, vehicle_id="V1", lat=30, lon=120, speed_kmh=3),
        line(FACILITY, event_id="3", ts=T0 + 20, level_pct="high", **base),
        line(FACILITY, event_id="4", ts=T0 + 400, level_pct=50, **base),
    ]
    result = replay(lines, [high, lost])
    assert result.events == 3
    assert [(b.line, b.reason.split(":")[0]) for b in result.bad_lines] == [
        (2, "(replay)"), (4, "(replay)"), (6, FACILITY)]
    assert "level_pct: Input should be a valid number" in result.bad_lines[2].reason
    # the tank fires at 0 s; the vehicle's 5-minute silence is noticed when the clock reaches
    # 400 s (the deadline, 310 s, is the alert's time); the tank resolves at 400 s
    assert [(a.model_id, a.state, a.last_ts - T0) for a in result.alerts] == [
        ("test.tank.high", "firing", 0.0), ("test.vehicle.lost", "firing", 310.0),
        ("test.tank.high", "resolved", 400.0)]


def test_bare_events_with_a_topic():
    high = rule(id="test.tank.high", source=FACILITY, kind="threshold",
                condition="level_pct >= 90")
    lines = [orjson.dumps({"event_id": "1", "ts": T0, "tank_id": "T1", "facility_id": "F",
                           "level_pct": 99})]
    result = replay(lines, [high], topic=FACILITY)
    assert [(a.key, a.state) for a in result.alerts] == [("T1", "firing")]


def reading(n, ts, **fields):
    return orjson.dumps({"event_id": str(n), "ts": ts, "tank_id": "T1", "facility_id": "F",
                         **fields})


def test_late_readings_are_counted_not_lost_silently():
    # A series that steps back 55 minutes: the flatline kind takes readings in order only.
    stuck = rule(id="test.tank.stuck", source=FACILITY, kind="flatline", field="level_pct",
                 count=5)
    times = [T0 + 300 * i for i in range(12)] + [T0 + 300 * 11 - 3300 + 300 * i
                                                  for i in range(11)]
    lines = [reading(n, ts, level_pct=50 + n % 7) for n, ts in enumerate(times)]
    result = replay(lines, [stuck], topic=FACILITY)
    assert result.events == 23 and result.bad_lines == []
    assert result.unused == {("test.tank.stuck", "late"): 11}
    assert result.late == 11
    assert "11 late and 0 skipped readings" in result.summary(1)


def test_events_a_rule_could_not_judge_are_counted_per_rule():
    hot = rule(id="test.tank.hot", source=FACILITY, kind="threshold", condition="temp_c > 60")
    lines = [reading(0, T0, temp_c=70), reading(1, T0 + 10, level_pct=50),
             reading(2, T0 + 20, level_pct=51), reading(3, T0 + 30, temp_c=20)]
    result = replay(lines, [hot], topic=FACILITY)
    assert result.undecided == {"test.tank.hot": 2}
    assert [a.state for a in result.alerts] == ["firing", "resolved"]
    assert "0 late and 0 skipped readings, 2 undecided, 0 rule failures" in result.summary(1)


@pytest.mark.parametrize(("ts", "why"), [
    ("2100-01-01T00:00:00Z", "ahead of the clock"),
    (0, "before 2000"),
    (T0 - 8 * 86400, "older than the horizon (7.0 days before 2024-06-03T00:20:00Z)"),
])
def test_event_times_out_of_bounds_are_bad_lines_and_do_not_poison_the_key(ts, why):
    hot = rule(id="test.tank.hot", source=FACILITY, kind="threshold", condition="temp_c > 60",
               clear="temp_c < 50")
    lines = [reading(1, T0, temp_c=40), reading(2, T0 + 1200, temp_c=40),
             reading(3, ts, temp_c=45), reading(4, T0 + 1260, temp_c=95)]
    result = replay(lines, [hot], topic=FACILITY)
    assert [(b.line, why in b.reason) for b in result.bad_lines] == [(3, True)]
    assert [(a.state, a.last_ts - T0) for a in result.alerts] == [("firing", 1260.0)]


def test_a_rule_failing_on_an_event_is_reported_with_the_line_and_the_rest_scored():
    from tests.unit.test_failure_confinement import faulty

    def boom(event):
        if event.data.get("temp_c") == 13:
            raise ArithmeticError("a defect")

    hot = rule(id="test.tank.hot", source=FACILITY, kind="threshold", condition="temp_c > 10")
    lines = [reading(1, T0, temp_c=13), reading(2, T0 + 60, temp_c=40)]
    result = replay(lines, [faulty(hot, score=boom)], topic=FACILITY)
    assert [(f.line, "ArithmeticError: a defect" in f.reason) for f in result.failures] == [
        (1, True)]
    assert [(a.state, a.last_ts - T0) for a in result.alerts] == [("firing", 60.0)]


def test_nan_is_a_bad_line_and_learned_models_go_on():
    pressure = rule(id="test.tank.pressure", source=FACILITY, kind="anomaly",
                    detector="gaussian", field="pressure_kpa", warmup=20)
    values = [500.0 + (i % 5) for i in range(40)]
    lines = [reading(i, T0 + 60 * i, pressure_kpa=v) for i, v in enumerate(values)]
    lines.insert(30, b'{"event_id":"x","ts":%d,"tank_id":"T1","facility_id":"F",'
                     b'"pressure_kpa":"NaN"}' % (T0 + 60 * 30))
    lines.append(reading(99, T0 + 60 * 41, pressure_kpa=900.0))
    result = replay(lines, [pressure], topic=FACILITY)
    assert [(b.line, "finite number" in b.reason) for b in result.bad_lines] == [(31, True)]
    assert result.failures == [] and result.events == 41
    assert [(a.state, a.last_ts - T0) for a in result.alerts] == [("firing", 60 * 41.0)]
    assert not any(math.isnan(a.evidence.get("value", 0)) for a in result.alerts)


def test_no_rules_is_refused():
    with pytest.raises(ValueError, match="no rules"):
        replay([reading(1, T0, temp_c=1)], [], topic=FACILITY)
