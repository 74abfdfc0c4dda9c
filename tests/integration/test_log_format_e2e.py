"""``--log-format json`` on the real processes: every line a worker (Faust's own lines too),
dispatch and the tracker write is one JSON object."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.integration.kafkakit import wait_for_log, worker_process, yujing_process
from tests.rulekit import FACILITY, rule_text

pytestmark = pytest.mark.broker


def test_every_log_line_of_every_process_is_a_json_object(kafka, tmp_path):
    run_id = "j" + uuid.uuid4().hex[:8]
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hot.yaml").write_text(rule_text(
        id=f"log.{run_id}.hot", source=FACILITY, kind="threshold", condition="temp_c >= 60"),
        encoding="utf-8")
    logs = {name: tmp_path / f"{name}.log" for name in ("worker", "dispatch", "track")}
    with worker_process(kafka.bootstrap, rules, f"log-{run_id}", logs["worker"],
                        "--log-format", "json") as worker, \
            yujing_process(logs["dispatch"], "dispatch", "run", "--bootstrap", kafka.bootstrap,
                           "--group-id", f"dispatch-{run_id}", "--metrics-port", "0",
                           "--log-format", "json") as dispatch, \
            yujing_process(logs["track"], "track", "--bootstrap", kafka.bootstrap,
                           "--metrics-port", "0", "--log-format", "json") as track:
        wait_for_log(logs["worker"], "reference topics read to their end", worker)
        wait_for_log(logs["dispatch"], "dispatching: consuming", dispatch)
        wait_for_log(logs["track"], "scorecards every", track)
    for name, path in logs.items():
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        assert len(lines) >= 3, (name, lines)
        for line in lines:
            record = json.loads(line)  # raises on a line in another format
            assert {"ts", "level", "logger", "message"} <= record.keys(), (name, line)
