"""End to end through the real broker for the model language (issue 3).

- a correlation across two topics (4 partitions each), keyed by a field neither topic is keyed
  by, so both streams are re-keyed to meet in one state; its resolution comes from a timer;
- window state that survives a worker restart (recovered from the changelog);
- hot reload: a rule file added while the worker runs is in force without a restart, and a broken
  one is rejected with file:line while the others keep working.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.integration.kafkakit import (
    dumps,
    produce,
    read_until,
    run,
    start_group_at_end,
    wait_for_log,
    worker_process,
)
from tests.rulekit import FACILITY, rule_text

pytestmark = pytest.mark.broker

TICKETS, SENSORS = "events.hotline.ticket", "events.utilities.sensor"


def test_correlation_restart_recovery_and_hot_reload(kafka, tmp_path):
    run_id = uuid.uuid4().hex[:8]
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "corr.yaml").write_text(rule_text(
        id="e2e.grid.gas", source=[TICKETS, SENSORS], key="grid_id", kind="correlation",
        within="1h", severity="red", summary="gas in {grid_id}",
        signals={"smell": {"topic": TICKETS, "when": 'category == "gas_smell"'},
                 "drop": {"topic": SENSORS, "when": "value < 200.0"}}), encoding="utf-8")
    (rules / "twice.yaml").write_text(rule_text(
        id="e2e.tank.twice", source=FACILITY, kind="window", where="level_pct >= 95",
        aggregate="count", size="10m", condition="value >= 2", summary="{count} highs"),
        encoding="utf-8")
    grid, tank = f"{run_id}-G", f"{run_id}-T"
    now = float(int(time.time()))
    t0 = now - 7200

    def ours(record):
        return run_id in str(record.get("key", ""))

    run(produce(kafka.bootstrap, [
        (TICKETS, f"{run_id}-K1".encode(), dumps({
            "event_id": f"{run_id}-1", "ts": t0, "ticket_id": f"{run_id}-K1", "grid_id": grid,
            "category": "gas_smell", "status": "new"})),
        (SENSORS, f"{run_id}-S1".encode(), dumps({
            "event_id": f"{run_id}-2", "ts": t0 + 600, "sensor_id": f"{run_id}-S1",
            "grid_id": grid, "network": "gas", "metric": "pressure_kpa", "value": 150.0})),
        (FACILITY, tank.encode(), dumps({
            "event_id": f"{run_id}-3", "ts": now - 60, "tank_id": tank, "facility_id": "F",
            "level_pct": 96.0})),
    ]))
    log = tmp_path / "worker.log"
    app_id = f"e2e-kinds-{run_id}"
    with worker_process(kafka.bootstrap, rules, app_id, log, "--reload-interval", "1") as proc:
        alerts = run(read_until(kafka.bootstrap, "alerts", wanted=ours,
                                done=lambda got: len(got) >= 2,
                                give_up=lambda: proc.poll() is not None))
        time.sleep(2)  # the tank's window state reaches the changelog
    assert sorted((a["model_id"], a["key"], a["state"], a["first_ts"], a["last_ts"])
                  for a in alerts) == [
        ("e2e.grid.gas", grid, "firing", t0 + 600, t0 + 600),
        ("e2e.grid.gas", grid, "resolved", t0 + 600, t0 + 3600),
    ]

    # The second high level comes while no worker runs; the restarted worker must remember
    # the first one (from the changelog) to see two within 10 minutes.
    run(produce(kafka.bootstrap, [(FACILITY, tank.encode(), dumps({
        "event_id": f"{run_id}-4", "ts": now - 30, "tank_id": tank, "facility_id": "F",
        "level_pct": 97.0}))]))
    with worker_process(kafka.bootstrap, rules, app_id, log, "--reload-interval", "1") as proc:
        alerts = run(read_until(kafka.bootstrap, "alerts", wanted=ours,
                                done=lambda got: any(a["model_id"] == "e2e.tank.twice"
                                                     for a in got),
                                give_up=lambda: proc.poll() is not None, timeout=60))
        assert [(a["model_id"], a["state"], a["summary"]) for a in alerts
                if a["model_id"] == "e2e.tank.twice"] == [("e2e.tank.twice", "firing",
                                                           "2 highs")], [
            (a["model_id"], a["state"], a["last_ts"]) for a in alerts]

        # Hot reload: a new rule and a broken one, written while the worker runs.
        mark = log.stat().st_size
        (rules / "hot.yaml").write_text(rule_text(
            id="e2e.tank.hot", source=FACILITY, kind="threshold", condition="temp_c > 80",
            summary="hot {temp_c}"), encoding="utf-8")
        (rules / "broken.yaml").write_text(rule_text(
            id="e2e.tank.broken", source=FACILITY, kind="threshold",
            condition="temperature > 80"), encoding="utf-8")
        wait_for_log(log, "rules reloaded", proc, after=mark)
        text = log.read_text(errors="replace")[mark:]
        assert f"rule file rejected: {rules / 'broken.yaml'}:" in text
        assert "unknown field 'temperature' in condition" in text
        run(produce(kafka.bootstrap, [(FACILITY, tank.encode(), dumps({
            "event_id": f"{run_id}-5", "ts": now, "tank_id": tank, "facility_id": "F",
            "temp_c": 90.0}))]))
        alerts = run(read_until(kafka.bootstrap, "alerts", wanted=ours,
                                done=lambda got: any(a["model_id"] == "e2e.tank.hot"
                                                     for a in got),
                                give_up=lambda: proc.poll() is not None))
    assert [(a["state"], a["summary"]) for a in alerts if a["model_id"] == "e2e.tank.hot"] == [
        ("firing", "hot 90.0")]


# Rule-file tests replayed through Kafka and a worker: the same events, the same expected
# alerts, but with the broker, re-keying, batching and the worker's timers between. The worker
# reads them as a backlog, so its deadlines follow their event time until it has caught up
# (``engine.worker.backlog``); its group starts at the ends the topics had before they were
# produced, so no earlier test's newer events move that clock past theirs. Only cases whose
# outcome does not depend on when a deadline fires between batches: a confirmation that comes
# after its deadline may be scored before or after the timer fires.
THROUGH_BROKER = [
    ("rules/emergency/fire_alarm_unconfirmed.yaml",   # sequence, fired by the timer
     ["a confirmation exactly 3 min after the alarm is in time and stays silent",
      "a confirmation from another building does not answer the alarm"]),
    ("rules/hazchem/tank_pressure_anomaly.yaml", None),  # online anomaly: every test
]


def test_rule_file_tests_hold_through_the_broker(kafka, tmp_path):
    from datetime import timedelta
    from pathlib import Path

    from engine.rule_files.loader import load_rules
    from topics.registry import EVENT_TOPICS

    repo = Path(__file__).resolve().parents[2]
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    run_id = uuid.uuid4().hex[:8]
    records: list = []
    expected: dict[str, list] = {}
    for relative, wanted in THROUGH_BROKER:
        source = repo / relative
        (rules_dir / source.name).write_text(source.read_text(encoding="utf-8"),
                                             encoding="utf-8")
        (rule,) = load_rules([source]).rules
        tests = [t for t in rule.spec.tests if wanted is None or t.name in wanted]
        assert wanted is None or len(tests) == len(wanted)
        for test in tests:
            tag = f"{run_id}-{len(expected)}"
            lines = sorted(((at, own, item.topic) for item in test.events
                            for at, own in item.expanded()), key=lambda line: line[0])
            for i, (at, own, item_topic) in enumerate(lines):
                topic = item_topic or rule.spec.sources[0]
                fields = {**test.given, **own}
                # Keys unique to this run and test: the broker keeps earlier runs' events.
                for name in {rule.key_field, EVENT_TOPICS[topic].key_field}:
                    if name in fields:
                        fields[name] = f"{tag}-{fields[name]}"
                fields |= {"event_id": f"{tag}-{i}", "source": "e2e",
                           "ts": (test.start + timedelta(seconds=at)).isoformat()}
                key = str(fields[EVENT_TOPICS[topic].key_field])
                records.append((topic, key.encode(), dumps(fields)))
            start = test.start.timestamp()
            expected[tag] = [(rule.id, want.state, None if want.at is None else start + want.at)
                             for want in test.expect]
    app_id = f"e2e-files-{run_id}"
    run(start_group_at_end(kafka.bootstrap, app_id, sorted(EVENT_TOPICS)))
    run(produce(kafka.bootstrap, records))

    def ours(record):
        return str(record.get("key", "")).startswith(run_id)

    with worker_process(kafka.bootstrap, rules_dir, app_id,
                        tmp_path / "worker.log", "--max-event-age", "0") as proc:
        total = sum(len(v) for v in expected.values())
        alerts = run(read_until(kafka.bootstrap, "alerts", wanted=ours,
                                done=lambda got: len(got) >= total,
                                give_up=lambda: proc.poll() is not None))
        time.sleep(3)  # and nothing more
        alerts = run(read_until(kafka.bootstrap, "alerts", wanted=ours, done=lambda g: False,
                                timeout=4))
    got: dict[str, list] = {tag: [] for tag in expected}
    for a in sorted(alerts, key=lambda a: (a["last_ts"], a["state"] == "resolved")):
        tag = "-".join(a["key"].split("-")[:2])
        got[tag].append((a["model_id"], a["state"], a["last_ts"]))
    for tag, wanted in expected.items():
        assert len(got[tag]) == len(wanted), (tag, got, expected)
        for have, want in zip(got[tag], wanted, strict=True):
            assert have[:2] == want[:2] and (want[2] is None or have[2] == want[2]), (tag, have)
