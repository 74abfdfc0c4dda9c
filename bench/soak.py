"""Soak: a worker at a steady rate for minutes, its memory, CPU and lag printed over time.

    python bench/soak.py [--minutes 10] [--rate 1000] [--interval 30] [--port 19292]
                         [--bootstrap HOST:PORT] [--profile SECONDS]

The events are the simulated city's (every department, seed 11, as many as the run sends, none
sent twice), re-dated as they are sent so
that event time runs with the wall clock (the absence and deadline rules then see a live city,
not a replay of 2024). They are produced at ``--rate`` events/s for ``--minutes`` into a worker
with every catalogue rule, on the broker given or one started on ``--port`` under a temporary
home. Every ``--interval`` seconds it prints the worker's resident memory, its CPU share of one
core over the interval, the events it consumed, its lag behind the producer and the alerts it
published; at the end, the first and last intervals side by side — a worker whose CPU or memory
climbs at a constant rate shows it there. With ``--profile``, py-spy samples the worker for that
many seconds in the first and in the last interval, and the functions whose share of the busy
samples moved the most are printed side by side (``bench/profile_diff.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import orjson
from aiokafka import AIOKafkaProducer

from bench.profile_diff import compare, record
from bench.throughput import (
    cpu_seconds,
    metrics_of,
    own_broker,
    sim_events,
    start_worker,
    wait_metrics,
)
from engine import broker
from engine.kafka_client.admin import ensure_topics
from engine.processes import stop_group
from topics.schemas import CITY_TZ


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def redated(value: bytes, now: float) -> bytes:
    """The event with its time set to ``now`` (the city's local time, as the simulator writes)."""
    event = orjson.loads(value)
    event["ts"] = datetime.fromtimestamp(now, UTC).astimezone(CITY_TZ).isoformat(
        timespec="milliseconds")
    return orjson.dumps(event)


class SteadyProducer(threading.Thread):
    """Sends the events round and round at ``rate`` a second until stopped; counts them."""

    def __init__(self, bootstrap: str, records: list[tuple[str, bytes, bytes]],
                 rate: float) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.records, self.rate = bootstrap, records, rate
        self.sent = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        asyncio.run(self._send())

    async def _send(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
        await producer.start()
        try:
            started = time.perf_counter()
            while not self.stopping.is_set():
                topic, key, value = self.records[self.sent % len(self.records)]
                await producer.send(topic, redated(value, time.time()), key=key)
                self.sent += 1
                if self.sent % 50 == 0:
                    ahead = self.sent / self.rate - (time.perf_counter() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
            await producer.flush()
        finally:
            await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--port", type=int, default=19292)
    parser.add_argument("--metrics-port", type=int, default=19299)
    parser.add_argument("--bootstrap")
    parser.add_argument("--profile", type=float, default=0.0,
                        help="seconds of py-spy sampling in the first and last interval")
    args = parser.parse_args()
    profiles: list[Path] = []

    with tempfile.TemporaryDirectory(prefix="yujing-soak-") as tmp:
        home = Path(tmp)
        cfg, bootstrap, _ = own_broker(args.bootstrap, args.port, home)
        worker = producer = None
        try:
            asyncio.run(ensure_topics(bootstrap))
            # As many distinct events as the run sends: cycling a few thousand would make every
            # key repeat its events every few seconds, and windowed rules' state grow with it.
            records = sim_events(int(args.minutes * 60 * args.rate) + 1000)
            worker = start_worker(bootstrap, REPO / "rules", f"soak-{int(time.time())}",
                                  args.metrics_port, home / "worker.log")
            wait_metrics(args.metrics_port, worker)
            producer = SteadyProducer(bootstrap, records, args.rate)
            producer.start()
            rows = []
            print(f"{'min':>5} {'rss MB':>7} {'cpu %':>6} {'consumed':>9} {'lag':>7} "
                  f"{'alerts':>7}", flush=True)
            began = time.monotonic()
            cpu_before, at_before = cpu_seconds(worker.pid), began
            while time.monotonic() - began < args.minutes * 60:
                last = time.monotonic() - began + 1.5 * args.interval > args.minutes * 60
                spent = 0.0
                if args.profile and (not rows or last) and len(profiles) < 2:
                    out = Path(tempfile.gettempdir()) / f"yujing-soak-profile-{len(profiles)}.txt"
                    sampled_from = time.monotonic()
                    if record(worker.pid, min(args.profile, args.interval), out):
                        profiles.append(out)
                    spent = time.monotonic() - sampled_from
                time.sleep(max(0.0, args.interval - spent))
                now = time.monotonic()
                cpu = cpu_seconds(worker.pid)
                seen = metrics_of(args.metrics_port, "yujing_events_consumed_total",
                                  "yujing_alerts_published_total")
                row = ((now - began) / 60, rss_mb(worker.pid),
                       100 * (cpu - cpu_before) / (now - at_before),
                       seen["yujing_events_consumed_total"],
                       producer.sent - seen["yujing_events_consumed_total"],
                       seen["yujing_alerts_published_total"])
                rows.append(row)
                cpu_before, at_before = cpu, now
                print(f"{row[0]:5.1f} {row[1]:7.0f} {row[2]:6.1f} {row[3]:9.0f} {row[4]:7.0f} "
                      f"{row[5]:7.0f}", flush=True)
            if len(rows) >= 2:
                first, last = rows[0], rows[-1]
                print(f"first interval: rss {first[1]:.0f} MB, cpu {first[2]:.0f}%; last: "
                      f"rss {last[1]:.0f} MB, cpu {last[2]:.0f}% "
                      f"(ratio {last[2] / max(first[2], 1e-9):.2f}); "
                      f"{producer.sent} events sent at {args.rate:g}/s")
            if len(profiles) == 2:
                print(compare(*profiles, seconds=min(args.profile, args.interval)), flush=True)
                print(f"stacks kept in {profiles[0]} and {profiles[1]}", flush=True)
            elif args.profile:
                print("no profile: py-spy missing or refused (pip install py-spy)", flush=True)
        finally:
            if producer is not None:
                producer.stopping.set()
                producer.join(timeout=30)
            if worker is not None:
                with contextlib.suppress(Exception):
                    stop_group(worker, 30.0)
            if cfg is not None:
                broker.stop(cfg)


if __name__ == "__main__":
    main()
