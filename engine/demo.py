"""``yujing demo``: a whole pipeline on this machine, in a minute.

Starts the Kafka broker (fetching its jars the first time), creates the topics, runs a worker with
the rules in ``rules/``, sends a short scripted scene — a tanker speeding on a highway, a storage
tank filling past its high-high level, a gas alarm, a truck whose GPS falls silent with the engine
on, and two malformed records — then prints each alert and dead letter as it arrives.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from engine import broker
from engine.kafka_admin import ensure_topics
from engine.loader import load_rules
from engine.reference import publish_reference

VEHICLE, FACILITY = "events.hazchem.vehicle", "events.hazchem.facility"
COLOURS = {"blue": "\033[34m", "yellow": "\033[33m", "orange": "\033[38;5;208m",
           "red": "\033[31m"}
RESET = "\033[0m"


def scene(now: float) -> list[tuple[str, str | None, dict[str, Any] | bytes]]:
    """(topic, key, event) records of the demo scene, timed relative to ``now``."""
    t0 = now - 120
    truck = {"vehicle_id": "DEMO-V1", "plate": "浙A·D0001", "lat": 30.25, "lon": 120.16,
             "road_class": "highway", "cargo_class": 3, "ignition": True}
    records: list[tuple[str, str | None, dict[str, Any] | bytes]] = []
    for i, speed in enumerate([78, 86, 91, 93, 90, 72]):
        records.append((VEHICLE, "DEMO-V1", {**truck, "event_id": f"demo-v1-{i}",
                                             "ts": t0 + 15 * i, "speed_kmh": speed}))
    tank = {"tank_id": "DEMO-T3", "facility_id": "DEMO-F1", "temp_c": 21.0, "lel_pct": 0.0,
            "toxic_ppm": 0.0}
    for i, level in enumerate([88.0, 91.5, 94.0, 95.6, 96.1]):
        records.append((FACILITY, "DEMO-T3", {**tank, "event_id": f"demo-t3-{i}",
                                              "ts": t0 + 20 * i, "level_pct": level}))
    records.append((FACILITY, "DEMO-T4", {**tank, "tank_id": "DEMO-T4", "event_id": "demo-t4",
                                          "ts": t0 + 30, "level_pct": 40.0, "lel_pct": 31.0}))
    records.append((VEHICLE, "DEMO-V2", {"vehicle_id": "DEMO-V2", "plate": "浙A·D0002",
                                         "lat": 30.3, "lon": 120.2, "speed_kmh": 0.0,
                                         "ignition": True, "event_id": "demo-v2",
                                         "ts": now - 11 * 60}))
    records.append((FACILITY, "DEMO-BAD1", b'{"tank_id": "DEMO-BAD1", "level_pct": 9'))
    records.append((VEHICLE, "DEMO-BAD2", {"event_id": "demo-bad2", "ts": now,
                                           "vehicle_id": "DEMO-BAD2", "lat": 30.1,
                                           "lon": 120.1, "speed_kmh": "fast"}))
    return records


def _show_alert(alert: dict[str, Any]) -> str:
    sev = alert["severity"]
    colour = COLOURS.get(sev, "") if sys.stdout.isatty() else ""
    reset = RESET if colour else ""
    return (f"{colour}[{sev.upper():6}]{reset} {alert['state']:8} {alert['model_id']:40} "
            f"{alert['key']:10} {alert['summary']}")


async def _run_scene(bootstrap: str, wait_s: float) -> tuple[int, int]:
    consumer = AIOKafkaConsumer("alerts", "events.deadletter", bootstrap_servers=bootstrap,
                                auto_offset_reset="latest", enable_auto_commit=False)
    await consumer.start()
    alerts = letters = 0
    try:
        # Subscribe before sending, so nothing is missed.
        while not consumer.assignment():
            await asyncio.sleep(0.1)
        await consumer.seek_to_end()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        try:
            for topic, key, value in scene(time.time()):
                body = value if isinstance(value, bytes) else orjson.dumps(value)
                await producer.send(topic, body, key=key.encode() if key else None)
            await producer.flush()
        finally:
            await producer.stop()
        print("sent the demo scene; alerts as they arrive:\n")
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, messages in batches.items():
                for message in messages:
                    record = orjson.loads(message.value)
                    if tp.topic == "alerts" and str(record.get("key", "")).startswith("DEMO"):
                        alerts += 1
                        print(_show_alert(record), flush=True)
                    elif tp.topic == "events.deadletter" and "DEMO" in str(record.get("key")):
                        letters += 1
                        print(f"[DEAD   ] {record['source_topic']} offset {record['offset']}: "
                              f"{record['reason']}", flush=True)
    finally:
        await consumer.stop()
    return alerts, letters


def run_demo(rules: list[Path], wait_s: float = 30.0, keep: bool = False) -> int:
    cfg = broker.BrokerConfig()
    print(f"starting Kafka {cfg.kafka_version} on {cfg.bootstrap} (first run fetches its jars "
          "with Maven) …", flush=True)
    broker.start(cfg)
    asyncio.run(ensure_topics(cfg.bootstrap))
    sent = asyncio.run(publish_reference(cfg.bootstrap, load_rules(rules).env.reference))
    print(f"published {sent} reference records (zones, lists)", flush=True)
    log_path = cfg.home.parent / "demo-worker.log"
    print(f"starting the worker (log: {log_path}) …", flush=True)
    cmd = [sys.executable, "-m", "engine.cli", "worker", "--bootstrap", cfg.bootstrap,
           "--app-id", "yujing-demo", "--metrics-port", "9464",
           *[arg for path in rules for arg in ("--rules", str(path))]]
    with log_path.open("wb") as log:
        worker = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        _wait_for_worker(log_path, worker)
        print("worker ready; metrics on http://127.0.0.1:9464/metrics", flush=True)
        alerts, letters = asyncio.run(_run_scene(cfg.bootstrap, wait_s))
        print(f"\n{alerts} alerts and {letters} dead letters in {wait_s:.0f} s")
        return 0 if alerts and letters else 1
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        if not keep:
            broker.stop(cfg)
            print("stopped the worker and the broker")


def _wait_for_worker(log_path: Path, worker: subprocess.Popen[bytes],
                     timeout: float = 90.0) -> None:
    """Until Faust says the worker is ready (it has joined the group and recovered tables)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited; see {log_path}")
        if b"Ready" in log_path.read_bytes():
            return
        time.sleep(0.2)
    raise TimeoutError(f"the worker was not ready after {timeout:.0f}s; see {log_path}")
