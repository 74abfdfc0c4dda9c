"""``yujing explain``: description, state size and recent verdicts from a replay."""

import orjson

from engine.offline.explain import explain, render
from tests.rulekit import FACILITY, rule


def test_explain_replays_and_reports_state_and_verdicts(tmp_path):
    high = rule(id="test.tank.high", source=FACILITY, kind="threshold",
                condition="level_pct >= 90", **{"for": "1m"})
    events = tmp_path / "events.jsonl"
    rows = [(0, "T1", 95), (30, "T1", 96), (60, "T1", 97), (0, "T2", 10), (90, "T1", 10),
            (-9 * 86400, "T1", 99)]
    events.write_bytes(b"".join(orjson.dumps(
        {"topic": FACILITY, "key": k, "value": {"event_id": f"{k}{t}", "ts": 1717380000 + t,
                                                "tank_id": k, "facility_id": "F",
                                                "level_pct": v}}) + b"\n"
        for t, k, v in rows))
    ex = explain(high, events)
    assert (ex.keys, ex.alerts, ex.verdicts) == (2, 2, {"breach": 3, "clear": 2})
    assert ex.state_bytes > 0
    assert [(k, r.verdict.value) for k, _, r in ex.readings] == [
        ("T1", "breach"), ("T1", "breach"), ("T1", "breach"), ("T2", "clear"), ("T1", "clear")]
    text = render(ex)
    assert "reads:       events.hazchem.facility keyed by tank_id" in text
    assert "condition:   level_pct >= 90" in text
    assert "state:       2 keys" in text
    assert "2024-06-03T10:01:30+08:00 T1: clear level_pct=10.0" in text
    assert "not used:    0 late, 0 skipped; 1 bad lines" in text


def test_explain_counts_what_the_rule_could_not_use(tmp_path):
    stuck = rule(id="test.tank.stuck", source=FACILITY, kind="flatline", field="level_pct",
                 count=3)
    events = tmp_path / "events.jsonl"
    times = [0, 300, 600, 900, 60, 120]
    events.write_bytes(b"".join(orjson.dumps(
        {"topic": FACILITY, "key": "T1", "value": {"event_id": str(i), "ts": 1717380000 + t,
                                                   "tank_id": "T1", "facility_id": "F",
                                                   "level_pct": 50 + i}}) + b"\n"
        for i, t in enumerate(times)))
    ex = explain(stuck, events)
    assert ex.unused == {"late": 2}
    assert "not used:    2 late, 0 skipped; 0 bad lines" in render(ex)


def test_explain_counts_the_events_the_rule_could_not_judge(tmp_path):
    high = rule(id="test.tank.high", source=FACILITY, kind="threshold",
                condition="level_pct >= 90")
    events = tmp_path / "events.jsonl"
    values = [{"level_pct": 95}, {"temp_c": 20}, {"temp_c": 21}, {"level_pct": 10}]
    events.write_bytes(b"".join(orjson.dumps(
        {"topic": FACILITY, "key": "T1", "value": {"event_id": str(i), "ts": 1717380000 + i,
                                                   "tank_id": "T1", "facility_id": "F", **v}})
        + b"\n" for i, v in enumerate(values)))
    ex = explain(high, events)
    assert (ex.undecided, ex.verdicts) == (2, {"breach": 1, "clear": 1})
    assert "undecided:   2 events (a field its condition needs was missing)" in render(ex)
