"""End to end through the real broker: the alert's life in the worker — a silence set with the
CLI marks alerts (still recorded), a level rises (``escalated``), a red alert inhibits a
related lower one for the same key."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

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
from tests.rulekit import FACILITY, rule_text

pytestmark = pytest.mark.broker


def test_silence_escalation_and_inhibition_through_the_worker(kafka, tmp_path):
    run_id = uuid.uuid4().hex[:8]
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "level.yaml").write_text(rule_text(
        id="e2e.life.level", source=FACILITY, kind="threshold", severity="yellow",
        condition="level_pct >= 90", clear="level_pct < 85",
        escalate=[{"severity": "orange", "when": "level_pct >= 97"}],
        summary="tank {tank_id} at {level_pct}%"), encoding="utf-8")
    (rules / "leak.yaml").write_text(rule_text(
        id="e2e.life.leak", source=FACILITY, kind="threshold", severity="red",
        condition="lel_pct >= 50", inhibits=["e2e.life.level"],
        summary="tank {tank_id} leaking"), encoding="utf-8")
    quiet, loud, leaking = (f"{run_id}-T{i}" for i in "QLX")

    # the duty desk silences one tank before anything happens
    silence = subprocess.run(
        [sys.executable, "-m", "engine.cli", "silence", "add", "--bootstrap", kafka.bootstrap,
         "--match", f"key={quiet}", "--match", "model_id=e2e.life.*", "--for", "2h",
         "--reason", "level sensor under repair", "--by", "test"],
        cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    listed = subprocess.run(
        [sys.executable, "-m", "engine.cli", "silence", "list", "--bootstrap", kafka.bootstrap],
        cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert silence in listed and "level sensor under repair" in listed

    t0 = float(int(time.time()) - 600)

    def tank(n, tank_id, ts, **fields):
        return (FACILITY, tank_id.encode(), dumps({"event_id": f"{run_id}-{n}", "ts": ts,
                                                    "tank_id": tank_id, "facility_id": "F",
                                                    **fields}))

    with worker_process(kafka.bootstrap, rules, f"life-{run_id}", tmp_path / "w.log") as proc:
        # the silence is in force once the worker has read control.silences to its end
        wait_for_log(tmp_path / "w.log", "reference topics read to their end", proc)
        run(produce(kafka.bootstrap, [
            tank(1, quiet, t0, level_pct=95.0),
            tank(2, loud, t0, level_pct=92.0),
            tank(3, loud, t0 + 10, level_pct=98.0),
            tank(4, leaking, t0, lel_pct=60.0),
            tank(5, leaking, t0 + 10, lel_pct=60.0, level_pct=93.0),
        ]))
        alerts = run(read_until(
            kafka.bootstrap, "alerts", wanted=lambda r: run_id in r.get("key", ""),
            done=lambda got: len(got) >= 5, give_up=lambda: proc.poll() is not None))

    log = (tmp_path / "w.log").read_text(errors="replace")
    got = sorted((a["model_id"], a["key"], a["state"], a["severity"], tuple(a["silenced_by"]),
                  a["inhibited_by"] is not None) for a in alerts)
    assert got == sorted([
        ("e2e.life.level", quiet, "firing", "yellow", (silence,), False),
        ("e2e.life.level", loud, "firing", "yellow", (), False),
        ("e2e.life.level", loud, "escalated", "orange", (), False),
        ("e2e.life.leak", leaking, "firing", "red", (), False),
        ("e2e.life.level", leaking, "firing", "yellow", (), True),
    ]), log[-3000:]
    red = next(a for a in alerts if a["model_id"] == "e2e.life.leak")
    inhibited = next(a for a in alerts if a["inhibited_by"] is not None)
    assert inhibited["inhibited_by"] == red["alert_id"]
    escalated = [a for a in alerts if a["key"] == loud]
    assert escalated[0]["alert_id"] == escalated[1]["alert_id"]
    assert all(a["emitted_at"] >= t0 for a in alerts)
