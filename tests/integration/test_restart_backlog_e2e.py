"""End to end through the real broker: a restarted worker's absence timers wait for the backlog.

A vehicle keeps reporting every second while the worker is stopped (or killed) for longer than
the absence timeout; by the wall clock its last reading the worker knows is long past the
timeout when the worker starts again, but its next readings wait in Kafka, behind thousands of
other records of its partition. The worker must read them before it judges the vehicle
silent: no absence alert for it, while a vehicle that really fell silent (nothing in the
backlog) gets its alert, with the id ``yujing replay`` of the same events gives.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from engine.decision import alert_id_for
from tests.integration.kafkakit import (
    REPO,
    dumps,
    produce,
    read_until,
    run,
    wait_for_log,
    worker_process,
)
from tests.rulekit import VEHICLE, rule_text

pytestmark = pytest.mark.broker

RULE = "e2e.vehicle.silent"
TIMEOUT_S = 10.0
OTHERS = 20_000
"""Records of other vehicles ahead of the reporting one's in its partition: reading them takes
the restarted worker long enough for a wall-clock timer to fire first."""


def position(run_id: str, vehicle: str, ts: float, ignition: bool = True) -> bytes:
    return dumps({"event_id": f"{run_id}-{vehicle}-{ts}", "ts": ts, "vehicle_id": vehicle,
                  "plate": vehicle, "lat": 30.0, "lon": 120.0, "speed_kmh": 40.0,
                  "ignition": ignition})


class Reporting(threading.Thread):
    """A vehicle reporting its position every ``every_s`` seconds (event time: the wall clock)
    until stopped; ``sent`` holds each record's value, in order."""

    def __init__(self, bootstrap: str, run_id: str, vehicle: str, every_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.run_id, self.vehicle, self.every_s = (
            bootstrap, run_id, vehicle, every_s)
        self.sent: list[bytes] = []
        self.partition: int | None = None
        self.started_sending = threading.Event()
        self._stopping = threading.Event()

    def run(self) -> None:
        asyncio.run(self._report())

    async def _report(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            while not self._stopping.is_set():
                value = position(self.run_id, self.vehicle, time.time())
                sent = await producer.send_and_wait(VEHICLE, value, key=self.vehicle.encode())
                self.sent.append(value)
                self.partition = sent.partition
                self.started_sending.set()
                await asyncio.sleep(self.every_s)
        finally:
            await producer.stop()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=30)


async def produce_to(bootstrap: str, partition: int, values: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    try:
        sends = [await producer.send(VEHICLE, value, key=key, partition=partition)
                 for key, value in values]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


def replayed(rules: Path, lines: list[bytes], tmp_path: Path) -> list[dict[str, object]]:
    events, out = tmp_path / "events.jsonl", tmp_path / "replayed.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in lines))
    subprocess.run([sys.executable, "-m", "engine.cli", "replay", str(events), "--rules",
                    str(rules), "--out", str(out)], cwd=REPO, check=True, capture_output=True)
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_a_restarted_worker_reads_the_backlog_before_judging_a_key_silent(kafka, tmp_path, stop):
    """Stopped cleanly or killed (``kill -9``: its state and offsets only as far as it had
    committed them), the restarted worker raises replay's alerts and no other."""
    run_id = uuid.uuid4().hex[:8]
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "silent.yaml").write_text(rule_text(
        id=RULE, source=VEHICLE, kind="absence", timeout=f"{TIMEOUT_S:.0f}s",
        arm_when="ignition == true", summary="{plate} silent"), encoding="utf-8")
    reporting, quiet = f"{run_id}-V1", f"{run_id}-V2"
    app_id = f"backlog-{run_id}"
    log1, log2 = tmp_path / "first.log", tmp_path / "second.log"
    reporter = Reporting(kafka.bootstrap, run_id, reporting)

    with worker_process(kafka.bootstrap, rules, app_id, log1) as proc:
        wait_for_log(log1, "caught up:", proc)  # what earlier tests left in the topics
        t0 = time.time()
        quiet_value = position(run_id, quiet, t0)
        run(produce(kafka.bootstrap, [(VEHICLE, quiet.encode(), quiet_value)]))
        reporter.start()
        assert reporter.started_sending.wait(30)
        time.sleep(3)  # both read by the first worker (its state records them)
        if stop == "sigkill":  # the worker and its rule-loading fork server
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    stopped = time.monotonic()
    try:
        assert reporter.partition is not None
        others = [(f"{run_id}-X{i % 50}".encode(),
                   position(run_id, f"{run_id}-X{i % 50}", t0 - 60, ignition=False))
                  for i in range(OTHERS)]
        run(produce_to(kafka.bootstrap, reporter.partition, others))
        # down for longer than the timeout while the vehicle keeps reporting
        time.sleep(max(0.0, stopped + TIMEOUT_S + 4 - time.monotonic()))
        with worker_process(kafka.bootstrap, rules, app_id, log2) as proc:
            wait_for_log(log2, "caught up:", proc)
            time.sleep(TIMEOUT_S + 4)  # a wall-clock deadline would have passed by now
            reporter.stop()
    finally:
        reporter.stop()

    alerts = run(read_until(kafka.bootstrap, "alerts", wanted=lambda a: a.get("key") in (
        reporting, quiet), done=lambda got: False, timeout=8))
    log = log2.read_text(errors="replace")
    caught_up = re.search(r"caught up: the backlog .* read \((\d+) records", log)
    assert caught_up is not None and int(caught_up.group(1)) >= OTHERS, log[-3000:]
    got = sorted((a["alert_id"], a["state"]) for a in alerts)
    silent_quiet = alert_id_for(RULE, quiet, t0 + TIMEOUT_S)
    assert got == [(silent_quiet, "firing")], log[-3000:]

    lines = [orjson.dumps({"topic": VEHICLE, "key": quiet, "value": orjson.loads(quiet_value)})]
    lines += [orjson.dumps({"topic": VEHICLE, "key": key.decode(), "value": orjson.loads(value)})
              for key, value in others]
    lines += [orjson.dumps({"topic": VEHICLE, "key": reporting, "value": orjson.loads(value)})
              for value in reporter.sent]
    expected = replayed(rules, lines, tmp_path)
    assert sorted((a["alert_id"], a["state"]) for a in expected) == got
