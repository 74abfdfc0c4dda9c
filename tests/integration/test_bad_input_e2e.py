"""Bad input through the real broker and a real worker: nothing stops or blinds it.

Each case was a way to stop or blind yujing: an oversized record the producer refused (the
worker crashed, and crashed again on the same record after every restart), a NaN that made a
river detector panic and lost its whole batch, a rule failing on an event, a reading dated 2100
that made its key deaf, a hostile rule file hot-reloaded into the worker, and no rules at all.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest

from tests.integration.kafkakit import (
    REPO,
    dumps,
    produce,
    read_until,
    run,
    wait_for_log,
    worker_process,
)
from tests.rulekit import FACILITY, VEHICLE, rule_text

pytestmark = pytest.mark.broker

TICKET = "events.hotline.ticket"
ALERT_MAX_BYTES = 64 * 1024


def rules_folder(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


GAS = rule_text(id="e2e.ticket.gas", source=TICKET, kind="text", keywords=["燃气味"],
                summary="{ticket_id}: {text}")
HOT = rule_text(id="e2e.tank.hot", source=FACILITY, kind="threshold", condition="temp_c > 60",
                summary="{tank_id} at {temp_c}")
OVERSPEED = rule_text(id="e2e.vehicle.overspeed", source=VEHICLE, kind="threshold",
                      condition="speed_kmh > 80", clear="speed_kmh <= 75",
                      summary="{plate} at {speed_kmh:.0f} km/h")


def ours(run_id: str):
    def wanted(record: dict) -> bool:
        return run_id in str(record.get("key", "")) or run_id in str(record.get("_key", "")) \
            or run_id in str(record.get("value", ""))[:200]
    return wanted


def test_oversized_and_poisoned_records_never_stop_or_blind_the_worker(kafka, tmp_path):
    run_id = uuid.uuid4().hex[:8]
    rules = rules_folder(tmp_path, gas=GAS, hot=HOT, overspeed=OVERSPEED)
    now = time.time()
    ticket, tank, hot_tank, truck = (f"{run_id}-{x}" for x in ("K1", "T1", "T2", "V1"))

    def tank_event(n: int, tank_id: str, **fields: object) -> bytes:
        return dumps({"event_id": f"{run_id}-{n}", "ts": now - 30, "tank_id": tank_id,
                      "facility_id": "F1", **fields})

    def truck_event(n: int, ts: object, speed: float) -> bytes:
        return dumps({"event_id": f"{run_id}-{n}", "ts": ts, "vehicle_id": truck,
                      "plate": "浙A·E2E", "lat": 30.2, "lon": 120.1, "speed_kmh": speed})

    huge_text = "闻到燃气味，楼道里很重。" + "啊" * 204_000  # 614 KB of UTF-8
    records = [
        (TICKET, ticket.encode(), dumps({
            "event_id": f"{run_id}-1", "ts": now - 30, "ticket_id": ticket,
            "category": "gas", "status": "new", "text": huge_text})),
        (FACILITY, f"{run_id}-T9".encode(), run_id.encode() + b"\x01" * 950_000),
        (FACILITY, tank.encode(), tank_event(3, tank, pressure_kpa="NaN")),
        (VEHICLE, truck.encode(), truck_event(4, "2100-01-01T00:00:00Z", 50.0)),
        (FACILITY, tank.encode(), dumps({"event_id": f"{run_id}-5", "ts": 0, "tank_id": tank,
                                         "facility_id": "F1", "temp_c": 99.0})),
        (VEHICLE, truck.encode(), truck_event(6, now - 20, 95.0)),
        (FACILITY, hot_tank.encode(), tank_event(7, hot_tank, temp_c=70.0)),
    ]
    assert len(records[0][2]) > 600_000
    run(produce(kafka.bootstrap, records))
    log = tmp_path / "worker.log"
    app_id = f"bad-{run_id}"
    with worker_process(kafka.bootstrap, rules, app_id, log) as proc:
        alerts = run(read_until(kafka.bootstrap, "alerts", wanted=ours(run_id),
                                done=lambda got: len(got) >= 3,
                                give_up=lambda: proc.poll() is not None))
        letters = run(read_until(kafka.bootstrap, "events.deadletter", wanted=ours(run_id),
                                 done=lambda got: len(got) >= 4,
                                 give_up=lambda: proc.poll() is not None))
        assert proc.poll() is None, log.read_text()[-3000:]
    assert sorted((a["model_id"], a["key"], a["state"]) for a in alerts) == [
        ("e2e.tank.hot", hot_tank, "firing"), ("e2e.ticket.gas", ticket, "firing"),
        ("e2e.vehicle.overspeed", truck, "firing")]  # the 2100 reading did not make it deaf
    for alert in alerts:
        assert len(orjson.dumps(alert)) < ALERT_MAX_BYTES
    (gas,) = [a for a in alerts if a["model_id"] == "e2e.ticket.gas"]
    assert gas["summary"].startswith(f"{ticket}: 闻到燃气味") and "…[cut: " in gas["summary"]
    by_class = sorted((letter["reason_class"], letter.get("truncated", False))
                      for letter in letters)
    assert by_class == [("event_time", False), ("event_time", False), ("not_json", True),
                        ("schema", False)], letters
    assert all(len(orjson.dumps(letter)) < 200_000 for letter in letters)

    # Restarted on the same input, it goes on: no crash loop, and it still scores.
    with worker_process(kafka.bootstrap, rules, app_id, tmp_path / "again.log") as proc:
        run(produce(kafka.bootstrap, [(FACILITY, f"{run_id}-T3".encode(), dumps({
            "event_id": f"{run_id}-8", "ts": time.time(), "tank_id": f"{run_id}-T3",
            "facility_id": "F1", "temp_c": 75.0}))]))
        later = run(read_until(kafka.bootstrap, "alerts", wanted=ours(run_id),
                               done=lambda got: any(a["key"] == f"{run_id}-T3" for a in got),
                               give_up=lambda: proc.poll() is not None))
        assert proc.poll() is None
    assert any(a["key"] == f"{run_id}-T3" for a in later)


def test_a_rule_failing_on_an_event_costs_only_that_event_of_that_rule(kafka, tmp_path):
    # A model that raises (here a real defect injected as a model kind) on one event of a
    # batch: the event is dead-lettered with the rule and the reason, and every other event of
    # the batch — the gas-smell ticket among them — is scored as if nothing happened.
    run_id = uuid.uuid4().hex[:8]
    faulty = rule_text(id="e2e.tank.faulty", source=FACILITY, kind="faulty",
                       condition="temp_c > 60", fail_at=13.0, summary="{tank_id} at {temp_c}")
    rules = rules_folder(tmp_path, faulty=faulty, gas=GAS)
    now = time.time()

    def tank(n: int, temp: float) -> tuple[str, bytes, bytes]:
        key = f"{run_id}-T{n}"
        return FACILITY, key.encode(), dumps({"event_id": f"{run_id}-{n}", "ts": now - 10,
                                              "tank_id": key, "facility_id": "F1",
                                              "temp_c": temp})

    ticket = f"{run_id}-K1"
    records = [tank(1, 70.0), tank(2, 13.0),
               (TICKET, ticket.encode(), dumps({
                   "event_id": f"{run_id}-k", "ts": now - 10, "ticket_id": ticket,
                   "category": "other", "status": "new", "text": "楼下有燃气味"})),
               tank(3, 80.0)]
    placed = run(produce(kafka.bootstrap, records))
    log = tmp_path / "worker.log"
    with worker_process(kafka.bootstrap, rules, f"faulty-{run_id}", log,
                        module="tests.integration.faulty_worker") as proc:
        alerts = run(read_until(kafka.bootstrap, "alerts", wanted=ours(run_id),
                                done=lambda got: len(got) >= 3,
                                give_up=lambda: proc.poll() is not None))
        letters = run(read_until(kafka.bootstrap, "events.deadletter", wanted=ours(run_id),
                                 done=lambda got: len(got) >= 1,
                                 give_up=lambda: proc.poll() is not None))
        time.sleep(2)
        assert proc.poll() is None, log.read_text()[-3000:]
    assert sorted((a["model_id"], a["key"]) for a in alerts) == [
        ("e2e.tank.faulty", f"{run_id}-T1"), ("e2e.tank.faulty", f"{run_id}-T3"),
        ("e2e.ticket.gas", ticket)]
    (letter,) = letters
    assert (letter["reason_class"], letter["rule_id"]) == ("scoring", "e2e.tank.faulty")
    assert (letter["source_topic"], letter["partition"], letter["offset"]) == (
        FACILITY, *placed[1])
    assert "ZeroDivisionError: injected defect" in letter["reason"]
    assert "rule e2e.tank.faulty failed scoring key" in log.read_text()


def test_a_hostile_rule_file_hot_reloaded_is_rejected_and_the_worker_scores_on(kafka,
                                                                               tmp_path):
    run_id = uuid.uuid4().hex[:8]
    rules = rules_folder(tmp_path, hot=HOT)
    log = tmp_path / "worker.log"

    def hot_tank(n: int) -> tuple[str, bytes, bytes]:
        key = f"{run_id}-T{n}"
        return FACILITY, key.encode(), dumps({"event_id": f"{run_id}-{n}", "ts": time.time(),
                                              "tank_id": key, "facility_id": "F1",
                                              "temp_c": 90.0})

    with worker_process(kafka.bootstrap, rules, f"reload-{run_id}", log,
                        "--reload-interval", "1") as proc:
        run(produce(kafka.bootstrap, [hot_tank(1)]))
        run(read_until(kafka.bootstrap, "alerts", wanted=ours(run_id),
                       done=lambda got: len(got) >= 1, give_up=lambda: proc.poll() is not None))
        parens = "(" * 100_000 + "temp_c > 1" + ")" * 100_000
        (rules / "parens.yaml").write_text(rule_text(
            id="e2e.tank.parens", source=FACILITY, kind="threshold", condition=parens),
            encoding="utf-8")
        (rules / "bomb.yaml").write_text(
            'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
                f'{c}: &{c} [{",".join(["*" + p] * 9)}]\n'
                for p, c in zip("abcdefgh", "bcdefghi", strict=True)), encoding="utf-8")
        wait_for_log(log, "parens.yaml:1: condition: the condition is 200010 characters", proc)
        wait_for_log(log, "bomb.yaml:6: its YAML aliases expand to more than 100000 values",
                     proc)
        run(produce(kafka.bootstrap, [hot_tank(2)]))
        alerts = run(read_until(kafka.bootstrap, "alerts", wanted=ours(run_id),
                                done=lambda got: len(got) >= 2,
                                give_up=lambda: proc.poll() is not None))
        assert proc.poll() is None
    assert sorted(a["key"] for a in alerts) == [f"{run_id}-T1", f"{run_id}-T2"]


def test_a_worker_with_no_valid_rule_refuses_to_run(kafka, tmp_path):
    rules = rules_folder(tmp_path, broken="id: e2e.broken\nkind: nope\n")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "worker", "--rules", str(rules), "--bootstrap",
         kafka.bootstrap, "--app-id", f"none-{uuid.uuid4().hex[:8]}", "--metrics-port", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "yujing worker: no valid rule file in" in done.stderr
    assert "refusing to consume events it would not score" in done.stderr
    assert "Traceback" not in done.stderr
    assert time.monotonic() - started < 120
