"""Faust's own cost per message: an agent that only counts, with Faust's fetch loop and ours.

    python bench/faust_path.py [--messages 200000] [--rounds 2] [--port 19392]

The same ~200-byte JSON messages (4 partitions) are read, each run by a fresh consumer group,
by a Faust app whose one agent takes them in batches (``take_events(1000, 0.05)``, as the
worker's agents do) and only counts them:

- ``stock``: Faust's fetch loop as it ships;
- ``inline``: the loop the worker installs
  (``engine.worker.faust_internals.fetch_drain.drain_inline``), which hands each message to the
  stream inline instead of through ``wait_first``'s four tasks;
- ``aiokafka``: a plain aiokafka consumer in one process reading the same messages, for scale.

Each run is a process of its own; it prints messages/s from its first message to its last, and
its CPU time per message (user + system, both threads). ``--rounds`` repeats the runs in
alternating order and the medians are printed, as this machine's load comes and goes.
It starts its own broker (under a temporary folder, on --port) unless --bootstrap is given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.throughput import own_broker, produce_raw
from engine import broker

PARTITIONS = 4

APP = """
import asyncio, os, sys, time
import faust
from engine.worker.faust_internals.fetch_drain import drain_inline

bootstrap, topic, group, total, mode = sys.argv[1:6]
total = int(total)
sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
app = faust.App(group, broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False,
                value_serializer="raw", key_serializer="raw", consumer_auto_offset_reset="earliest",
                datadir=os.environ["DATADIR"])
if mode == "inline":
    drain_inline(app.consumer)
source = app.topic(topic, value_serializer="raw", key_serializer="raw")
seen = {"n": 0, "first": None}


@app.agent(source)
async def count(stream):
    async for batch in stream.take_events(1000, 0.05):
        if seen["first"] is None:
            seen["first"] = (time.perf_counter(), os.times())
        seen["n"] += len(batch)
        if seen["n"] >= total:
            wall = time.perf_counter() - seen["first"][0]
            now, then = os.times(), seen["first"][1]
            cpu = (now.user - then.user) + (now.system - then.system)
            print(f"RESULT {seen['n'] / wall:.0f} {cpu / seen['n'] * 1e6:.1f}", flush=True)
            os._exit(0)

app.main()
"""


def counting_run(code: str, *args: str, env: dict[str, str] | None = None
                 ) -> tuple[float, float]:
    """Run one counting program (``APP`` or ``AIOKAFKA``) in a process of its own: (messages/s,
    CPU µs per message), from the RESULT line it prints (Faust logs what its agents print)."""
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    for line in (proc.stdout + proc.stderr).splitlines():
        if "RESULT " in line:
            rate, cpu = line.split("RESULT ")[1].split()[:2]
            return float(rate), float(cpu)
    raise RuntimeError(f"no result:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


AIOKAFKA = """
import asyncio, os, sys, time
from aiokafka import AIOKafkaConsumer

bootstrap, topic, group, total = sys.argv[1:5]
total = int(total)


async def main():
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                auto_offset_reset="earliest", max_poll_records=5000)
    await consumer.start()
    n, first = 0, None
    while n < total:
        for messages in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
            if first is None:
                first = (time.perf_counter(), os.times())
            n += len(messages)
    wall = time.perf_counter() - first[0]
    now, then = os.times(), first[1]
    cpu = (now.user - then.user) + (now.system - then.system)
    print(f"RESULT {n / wall:.0f} {cpu / n * 1e6:.1f}", flush=True)
    os._exit(0)

asyncio.run(main())
"""


async def _topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--port", type=int, default=19392)
    parser.add_argument("--bootstrap")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="yujing-faust-path-"))
    cfg, bootstrap, _ = own_broker(args.bootstrap, args.port, home)
    try:
        run_id = str(int(time.time()))
        topic = f"faust-path-{run_id}"
        asyncio.run(_topic(bootstrap, topic))
        rate = asyncio.run(produce_raw(bootstrap, topic, args.messages))
        print(f"broker: Kafka {broker.KAFKA_VERSION} on {bootstrap}; {os.cpu_count()} cores; "
              f"{args.messages:,} messages of ~200 bytes in {PARTITIONS} partitions "
              f"(produced at {rate:,.0f} msg/s)")
        results: dict[str, list[tuple[float, float]]] = {"stock": [], "inline": [],
                                                          "aiokafka": []}
        for round_ in range(args.rounds):
            order = ["stock", "inline", "aiokafka"]
            if round_ % 2:
                order.reverse()
            for mode in order:
                group = f"faust-path-{mode}-{round_}-{run_id}"
                if mode == "aiokafka":
                    result = counting_run(AIOKAFKA, bootstrap, topic, group, str(args.messages))
                else:
                    result = counting_run(
                        APP, bootstrap, topic, group, str(args.messages), mode,
                        env={**os.environ, "DATADIR": str(home / group),
                             "PYTHONPATH": str(REPO)})
                results[mode].append(result)
                print(f"   {mode:8} (round {round_ + 1}): {result[0]:,.0f} msg/s, "
                      f"{result[1]:.1f} µs CPU per message")
        medians = {mode: (statistics.median(r[0] for r in runs),
                          statistics.median(r[1] for r in runs))
                   for mode, runs in results.items()}
        for mode, (rate, cpu) in medians.items():
            print(f"{mode:8} median: {rate:,.0f} msg/s, {cpu:.1f} µs CPU per message")
        print(f"inline / stock: {medians['inline'][0] / medians['stock'][0]:.2f}× the messages/s, "
              f"{medians['stock'][1] - medians['inline'][1]:.1f} µs less CPU per message; "
              f"inline / aiokafka: {medians['inline'][0] / medians['aiokafka'][0]:.2f}")
    finally:
        if cfg is not None:
            broker.stop(cfg)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
