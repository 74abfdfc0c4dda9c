"""Replay runs the core over JSONL in event time; bad lines are reported and skipped."""

import orjson

from engine.replay import replay
from tests.rulekit import FACILITY, VEHICLE, rule


def line(topic, **value):
    return orjson.dumps({"topic": topic, "key": value.get("tank_id"), "value": value})


def test_replay_scores_envelopes_and_reports_bad_lines_with_numbers():
    high = rule(id="test.tank.high", source=FACILITY, kind="threshold",
                condition="level_pct >= 90")
    lost = rule(id="test.vehicle.lost", source=VEHICLE, kind="absence", timeout="5m")
    base = {"facility_id": "F1", "tank_id": "T1"}
    lines = [
        line(FACILITY, event_id="1", ts=0, level_pct=95, **base),
        b"{broken",
        b"",
        orjson.dumps({"value": {}}),
        line(VEHICLE, event_id="2", ts=10, vehicle_id="V1", lat=30, lon=120, speed_kmh=3),
        line(FACILITY, event_id="3", ts=20, level_pct="high", **base),
        line(FACILITY, event_id="4", ts=400, level_pct=50, **base),
    ]
    result = replay(lines, [high, lost])
    assert result.events == 3
    assert [(b.line, b.reason.split(":")[0]) for b in result.bad_lines] == [
        (2, "(replay)"), (4, "(replay)"), (6, FACILITY)]
    assert "level_pct: Input should be a valid number" in result.bad_lines[2].reason
    # the tank fires at 0 s; the vehicle's 5-minute silence is noticed when the clock reaches
    # 400 s (the deadline, 310 s, is the alert's time); the tank resolves at 400 s
    assert [(a.model_id, a.state, a.last_ts) for a in result.alerts] == [
        ("test.tank.high", "firing", 0.0), ("test.vehicle.lost", "firing", 310.0),
        ("test.tank.high", "resolved", 400.0)]


def test_bare_events_with_a_topic():
    high = rule(id="test.tank.high", source=FACILITY, kind="threshold",
                condition="level_pct >= 90")
    lines = [orjson.dumps({"event_id": "1", "ts": 0, "tank_id": "T1", "facility_id": "F",
                           "level_pct": 99})]
    result = replay(lines, [high], topic=FACILITY)
    assert [(a.key, a.state) for a in result.alerts] == [("T1", "firing")]
