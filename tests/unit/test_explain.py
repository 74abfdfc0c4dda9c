"""``yujing explain``: description, state size and recent verdicts from a replay."""

import orjson

from engine.explain import explain, render
from tests.rulekit import FACILITY, rule


def test_explain_replays_and_reports_state_and_verdicts(tmp_path):
    high = rule(id="test.tank.high", source=FACILITY, kind="threshold",
                condition="level_pct >= 90", **{"for": "1m"})
    events = tmp_path / "events.jsonl"
    rows = [(0, "T1", 95), (30, "T1", 96), (60, "T1", 97), (0, "T2", 10), (90, "T1", 10)]
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
