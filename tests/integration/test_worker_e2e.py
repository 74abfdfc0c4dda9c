"""End to end through the real broker: events in, exact alerts and dead letters out.

A ``yujing worker`` process consumes the department topics; the test produces events with known
violations (one keyed wrongly by its producer, so it is re-keyed; a window keyed by another
field, which always is), a vehicle that falls silent (an absence the worker's timer
must notice with no further input), and malformed records. Twice: with re-keyed events scored
where they are read (the worker reads every partition), and sent through the re-keying topic.
"""

from __future__ import annotations

import time
import uuid

import pytest

from engine.decision import alert_id_for
from tests.integration.kafkakit import dumps, produce, read_until, run, worker_process
from tests.rulekit import FACILITY, VEHICLE, rule_text

pytestmark = pytest.mark.broker


@pytest.mark.parametrize("rekey", ["--rekey-here", "--no-rekey-here"])
def test_worker_publishes_exact_alerts_and_dead_letters(kafka, tmp_path, rekey):
    run_id = uuid.uuid4().hex[:8]
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "level.yaml").write_text(rule_text(
        id="e2e.tank.level_high", source=FACILITY, kind="threshold", severity="red",
        condition="level_pct >= 95", clear="level_pct < 90", **{"for": "30s"},
        summary="tank {tank_id} at {level_pct}%"), encoding="utf-8")
    (rules / "alarms.yaml").write_text(rule_text(
        id="e2e.facility.alarms", source=FACILITY, key="facility_id", kind="window",
        where="lel_pct >= 25", aggregate="count", size="10m", condition="value >= 2",
        summary="{count} gas alarms at {facility_id}"), encoding="utf-8")
    (rules / "gps.yaml").write_text(rule_text(
        id="e2e.vehicle.gps_lost", source=VEHICLE, kind="absence", timeout="10m",
        arm_when="ignition == true", summary="{plate} silent"), encoding="utf-8")

    t0 = float(int(time.time()) - 3600)  # an hour ago: the GPS deadline has long passed
    tank_a, tank_b, tank_c = (f"{run_id}-T{i}" for i in "ABC")
    facility, truck = f"{run_id}-F1", f"{run_id}-V1"

    def tank_event(n, tank, ts, **fields):
        return dumps({"event_id": f"{run_id}-{n}", "ts": ts, "tank_id": tank,
                      "facility_id": facility, **fields})

    records = [
        (FACILITY, tank_a.encode(), tank_event(1, tank_a, t0, level_pct=96.0)),
        (FACILITY, tank_a.encode(), tank_event(2, tank_a, t0 + 30, level_pct=97.0)),
        (FACILITY, tank_a.encode(), tank_event(3, tank_a, t0 + 60, level_pct=89.0)),
        (FACILITY, None, tank_event(4, tank_c, t0, level_pct=99.0)),  # producer sent no key
        (FACILITY, None, tank_event(5, tank_c, t0 + 40, level_pct=99.5)),
        (FACILITY, tank_b.encode(), tank_event(6, tank_b, t0 + 100, lel_pct=30.0)),
        (FACILITY, tank_a.encode(), tank_event(7, tank_a, t0 + 200, lel_pct=40.0)),
        (VEHICLE, truck.encode(), dumps({"event_id": f"{run_id}-8", "ts": t0,
                                         "vehicle_id": truck, "plate": "浙A00001", "lat": 30,
                                         "lon": 120, "speed_kmh": 40, "ignition": True})),
        (FACILITY, f"{run_id}-bad1".encode(), b"{" + run_id.encode() + b" not json"),
        (VEHICLE, f"{run_id}-bad2".encode(), dumps({"event_id": f"{run_id}-9", "ts": t0,
                                                    "vehicle_id": truck, "lat": 30})),
    ]
    positions = run(produce(kafka.bootstrap, records))

    expected_alerts = sorted([
        ("e2e.tank.level_high", tank_a, "firing", t0, t0 + 30, f"tank {tank_a} at 97.0%"),
        ("e2e.tank.level_high", tank_a, "resolved", t0, t0 + 60, f"tank {tank_a} at 89.0%"),
        ("e2e.tank.level_high", tank_c, "firing", t0, t0 + 40, f"tank {tank_c} at 99.5%"),
        ("e2e.facility.alarms", facility, "firing", t0 + 200, t0 + 200,
         f"2 gas alarms at {facility}"),
        # the first alarm leaves the 10-minute window at t0+700: the timer resolves it
        ("e2e.facility.alarms", facility, "resolved", t0 + 200, t0 + 700,
         f"1 gas alarms at {facility}"),
        ("e2e.vehicle.gps_lost", truck, "firing", t0 + 600, t0 + 600, "浙A00001 silent"),
    ])

    def ours(record):
        return run_id in str(record.get("key", "")) or run_id in str(record.get("value", ""))

    with worker_process(kafka.bootstrap, rules, f"e2e-{run_id}", tmp_path / "worker.log",
                        rekey) as proc:
        alerts = run(read_until(kafka.bootstrap, "alerts", wanted=ours,
                                done=lambda got: len(got) >= len(expected_alerts),
                                give_up=lambda: proc.poll() is not None))
        # nothing more may follow: give the worker a moment to show any surplus
        time.sleep(3)
        alerts = run(read_until(kafka.bootstrap, "alerts", wanted=ours,
                                done=lambda got: False, timeout=5))
        letters = run(read_until(kafka.bootstrap, "events.deadletter", wanted=ours,
                                 done=lambda got: len(got) >= 2))

    log = (tmp_path / "worker.log").read_text(errors="replace")
    got = sorted((a["model_id"], a["key"], a["state"], a["first_ts"], a["last_ts"], a["summary"])
                 for a in alerts)
    assert got == expected_alerts, log[-3000:]
    for a in alerts:
        assert a["_key"] == a["alert_id"] == alert_id_for(a["model_id"], a["key"], a["first_ts"])

    (p_bad1, o_bad1), (p_bad2, o_bad2) = positions[8], positions[9]
    got_letters = sorted((d["source_topic"], d["partition"], d["offset"], d["key"], d["reason"])
                         for d in letters)
    assert got_letters == sorted([
        (FACILITY, p_bad1, o_bad1, f"{run_id}-bad1",
         "not JSON: unexpected character, expected a string key: line 1 column 2 (char 1)"),
        (VEHICLE, p_bad2, o_bad2, f"{run_id}-bad2",
         "does not match the events.hazchem.vehicle schema: lon: Field required; "
         "speed_kmh: Field required"),
    ])
    assert {d["value"] for d in letters} == {records[8][2].decode(), records[9][2].decode()}
