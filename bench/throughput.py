"""Throughput and latency through a real broker: the raw aiokafka ceiling against yujing.

    python bench/throughput.py [--messages 200000] [--port 19192]

1. Ceiling: a plain aiokafka consume → produce passthrough of ~200-byte JSON messages.
2. Engine: simulator events of every department, produced as fast as the producer can, consumed
   by a ``yujing worker`` with every rule file loaded; events/s consumed and alerts/s published
   (read from the worker's Prometheus metrics), and the ratio to (1).
3. Latency: at half the engine's maximum, probe events (one per new key, each fired by a probe
   rule at once) are timed from their Kafka record time to their alert's record time. It
   starts once the worker has written the state of (2)'s backlog, with 5 s of load before the
   first probe.

It starts its own broker (under a temporary folder, on --port) unless --bootstrap is given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from engine import broker
from engine.kafka_client.admin import ensure_topics
from engine.kafka_client.partitions import partition_of
from engine.processes import stop_group
from simulator.base import SimContext, parse_start
from simulator.run import Simulation, reference_city
from topics.registry import DEFAULT_PARTITIONS

PROBE_RULE = """\
id: bench.latency.probe
name: {zh: 延迟探针, en: Latency probe}
departments: [command_center]
source: events.hazchem.facility
where: source == "latency-probe"
kind: threshold
condition: level_pct >= 0.0
severity: blue
summary: "probe {tank_id}"
description: Fires at once for every probe event (each probe is a new tank).
tests:
  - {name: a probe fires, given: {tank_id: P, facility_id: F, source: latency-probe},
     events: [{at: 0s, level_pct: 1}], expect: [{at: 0s}]}
  - {name: other events do not, given: {tank_id: P, facility_id: F},
     events: [{at: 0s, level_pct: 1}], expect: []}
"""


async def produce_raw(bootstrap: str, topic: str, n: int) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10,
                                max_batch_size=512 * 1024)
    await producer.start()
    body = orjson.dumps({"event_id": "x" * 36, "ts": 1717380000.0, "tank_id": "T-0000",
                         "facility_id": "F-00", "level_pct": 55.5, "temp_c": 21.3,
                         "pressure_kpa": 812.4, "lel_pct": 0.0, "toxic_ppm": 0.1,
                         "source": "bench"})
    started = time.perf_counter()
    for i in range(n):
        await producer.send(topic, body, key=f"T-{i % 5000:04d}".encode())
    await producer.flush()
    await producer.stop()
    return n / (time.perf_counter() - started)


async def raw_passthrough(bootstrap: str, source: str, sink: str, n: int) -> float:
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id="bench-raw",
                                auto_offset_reset="earliest", max_poll_records=5000)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10,
                                max_batch_size=512 * 1024)
    await consumer.start()
    await producer.start()
    done = 0
    started = None
    try:
        while done < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if started is None and batches:
                started = time.perf_counter()
            futures = []
            for messages in batches.values():
                for m in messages:
                    futures.append(await producer.send(sink, m.value, key=m.key))
                    done += 1
            if futures:
                await asyncio.gather(*futures)
        await producer.flush()
        return done / (time.perf_counter() - (started or time.perf_counter()))
    finally:
        await consumer.stop()
        await producer.stop()


def sim_events(n: int, seed: int = 11) -> list[tuple[str, bytes, bytes]]:
    """About ``n`` simulator events of every department (as many simulated hours as it takes)."""
    begin = parse_start("2024-06-03T00:00:00")
    ctx = SimContext(seed=seed, start=begin, end=begin + 7 * 86400, rate=8.0,
                     city=reference_city(REPO / "rules"))
    out = []
    for envelope in Simulation(ctx).events():
        out.append((envelope.topic, envelope.key.encode(), orjson.dumps(envelope.value)))
        if len(out) >= n:
            break
    return out


async def produce(bootstrap: str, records: list[tuple[str, bytes, bytes]],
                  per_second: float | None = None) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5,
                                max_batch_size=512 * 1024)
    await producer.start()
    started = time.perf_counter()
    for i, (topic, key, value) in enumerate(records):
        if per_second and i % 100 == 0:
            ahead = i / per_second - (time.perf_counter() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
        await producer.send(topic, value, key=key)
    await producer.flush()
    await producer.stop()
    return len(records) / (time.perf_counter() - started)


def metric(port: int, name: str) -> float:
    return metrics_of(port, name)[name]


def metrics_of(port: int, *names: str) -> dict[str, float]:
    """Each named metric of a worker, summed over its labels (one read of its /metrics)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {name: sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text,
                                                   re.M))
            for name in names}


def start_worker(bootstrap: str, rules: Path, app_id: str, port: int, log: Path,
                 extra: list[str] | None = None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "engine.cli", "worker", "--rules", str(rules), "--bootstrap",
           bootstrap, "--app-id", app_id, "--metrics-port", str(port), "--loglevel", "warning",
           "--max-event-age", "0",  # the simulated city is of 2024
           *(extra or [])]
    return subprocess.Popen(cmd, cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def histogram(port: int, name: str) -> str:
    """Count, mean and the slowest bucket reached of a Prometheus histogram."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    count = float(re.search(rf"^{name}_count (\S+)$", text, re.M).group(1))  # type: ignore
    total = float(re.search(rf"^{name}_sum (\S+)$", text, re.M).group(1))  # type: ignore
    buckets = [(float(le), float(n)) for le, n in
               re.findall(rf'^{name}_bucket{{le="([^"+]+)"}} (\S+)$', text, re.M)]
    over = [(le, count - n) for le, n in buckets if count - n > 0]
    slowest = f"; {over[-1][1]:.0f} over {over[-1][0] * 1000:.0f} ms" if over else ""
    return f"{count:.0f}, mean {1000 * total / max(count, 1):.1f} ms{slowest}"


def wait_metrics(port: int, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("worker exited")
        try:
            metric(port, "yujing_rules_loaded")
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("worker metrics never came up")


def until_consumed(port: int, target: float, timeout: float = 900.0) -> tuple[float, float]:
    """(seconds from the first event consumed until ``target`` events, alerts published)."""
    first = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        consumed = metric(port, "yujing_events_consumed_total")
        if first is None and consumed > 0:
            first = time.perf_counter()
        if consumed >= target:
            return time.perf_counter() - (first or time.perf_counter()), metric(
                port, "yujing_alerts_published_total")
        # A scrape costs the worker about 8 ms of its one core (every series rendered, /proc
        # read): once a second until close to the end (Prometheus scrapes far less often).
        time.sleep(0.1 if consumed > 0.9 * target else 1.0)
    raise TimeoutError(f"only {metric(port, 'yujing_events_consumed_total')} of {target}")


STEP = 100
"""Background events sent together (then the script sleeps until the next step is due)."""


def steps_of(records: list[tuple[str, bytes, bytes]]
             ) -> dict[tuple[str, int], list[tuple[bytes, bytes]]]:
    """``records`` by (topic, partition), the partition as the producer's default partitioner
    (and the worker) would choose it."""
    groups: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
    for topic, key, value in records:
        partition = partition_of(key)
        groups.setdefault((topic, partition), []).append((key, value))
    return groups


async def probe_latency(bootstrap: str, rate: float, seconds: float, run_id: str,
                        worker_pid: int, warmup: float = 5.0) -> list[float]:
    """Send background + probes at ``rate`` events/s for ``seconds``; return probe latencies.

    The first ``warmup`` seconds carry background only, so that the worker is at this rate's
    steady state (batch sizes, commits) when the first probe goes."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    partitions = [TopicPartition("alerts", p) for p in range(DEFAULT_PARTITIONS)]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    background = sim_events(int(rate * (seconds + warmup)), seed=29)
    first_probe = int(rate * warmup)
    # Each step of 100 events goes out as one batch per partition, the partitions worked out
    # before the clock starts: a send() per event cost this script about 200 µs of CPU an
    # event, on the two cores the worker and the broker share (58% of a core at 2,800/s).
    steps = [steps_of(background[start:start + STEP]) for start in range(0, len(background),
                                                                          STEP)]
    sent: dict[str, float] = {}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    started, phase_began = time.perf_counter(), time.time()
    cpu_worker, cpu_own = cpu_seconds(worker_pid), time.process_time()
    for step, groups in enumerate(steps):
        i = step * STEP
        ahead = i / rate - (time.perf_counter() - started)
        if ahead > 0:
            await asyncio.sleep(ahead)
        if i >= first_probe:
            tank = f"probe-{run_id}-{i}"
            meta = await (await producer.send("events.hazchem.facility", orjson.dumps({
                "event_id": tank, "ts": time.time(), "tank_id": tank, "facility_id": "F",
                "level_pct": 1.0, "source": "latency-probe"}), key=tank.encode()))
            sent[tank] = meta.timestamp / 1000
        for (topic, partition), records in groups.items():
            batch = producer.create_batch()
            for key, value in records:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    await producer.send_batch(batch, topic, partition=partition)
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            await producer.send_batch(batch, topic, partition=partition)
    await producer.flush()
    sending = time.perf_counter() - started
    print(f"   CPU while sending: the worker {(cpu_seconds(worker_pid) - cpu_worker) / sending:.0%}"
          f" of a core, this script {(time.process_time() - cpu_own) / sending:.0%}")
    await producer.stop()
    latencies = []
    scored: list[float] = []
    """Kafka record time of each probe to the worker's publishing of its alert."""
    slowest: list[tuple[float, float]] = []
    deadline = time.monotonic() + 30
    while len(latencies) < len(sent) and time.monotonic() < deadline:
        for messages in (await consumer.getmany(timeout_ms=500)).values():
            for m in messages:
                alert = orjson.loads(m.value)
                if alert["model_id"] == "bench.latency.probe" and alert["key"] in sent:
                    latencies.append(m.timestamp / 1000 - sent[alert["key"]])
                    if alert.get("emitted_at"):
                        scored.append(alert["emitted_at"] - sent[alert["key"]])
                    slowest.append((latencies[-1], sent[alert["key"]]))
    await consumer.stop()
    slowest.sort(reverse=True)
    print("   slowest probes (latency, sent at, s into the phase): " + ", ".join(
        f"{lat * 1000:.0f} ms at {time.strftime('%H:%M:%S', time.localtime(at))}"
        f".{int(at * 1000) % 1000:03d} ({at - phase_began:.1f} s)" for lat, at in slowest[:6]))
    if len(scored) >= 2:
        cut = statistics.quantiles(scored, n=100)
        print(f"   of which until the worker published the alert: p50 {cut[49] * 1000:.0f} ms, "
              f"p99 {cut[98] * 1000:.0f} ms (the rest: the producer, the broker, the reader)")
    return latencies


def own_broker(bootstrap: str | None, port: int, home: Path
               ) -> tuple[broker.BrokerConfig | None, str, int | None]:
    """``bootstrap`` when given, else a broker started under ``home`` on ``port``: (its
    config, to stop it with, its address, its pid)."""
    if bootstrap:
        return None, bootstrap, None
    cfg = broker.BrokerConfig(port=port, controller_port=port + 1, home=home / "kafka",
                              heap="2g")
    pid = broker.start(cfg)
    return cfg, cfg.bootstrap, pid


def settled(port: int, quiet_s: float = 3.0, timeout: float = 180.0) -> tuple[float, float]:
    """Wait until the worker has written the state of the backlog it just scored (its
    changelog records written stand still for ``quiet_s``): a commit after a backlog writes
    thousands of keys in slices, seconds in which latency says nothing about the
    steady state. Return (seconds waited, records written meanwhile)."""
    began = time.monotonic()
    first = last = metric(port, "yujing_state_records_written_total")
    still_since = began
    while time.monotonic() - began < timeout:
        time.sleep(0.5)
        now = metric(port, "yujing_state_records_written_total")
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet_s:
            break
    return still_since - began, last - first


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--port", type=int, default=19192)
    parser.add_argument("--bootstrap")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--latency-rate", type=float,
                        help="events/s offered while latency is measured (default: half of "
                             "the engine's maximum in this run; fix it to compare two builds)")
    parser.add_argument("--worker-args", default="",
                        help='options for "yujing worker", e.g. "--batch-within 0.01"')
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (worker log, broker data)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="yujing-bench-"))
    cfg, bootstrap, _ = own_broker(args.bootstrap, args.port, home)
    run_id = str(int(time.time()))
    worker = None
    try:
        asyncio.run(ensure_topics(bootstrap))
        asyncio.run(_topics(bootstrap, [f"bench-in-{run_id}", f"bench-out-{run_id}"]))
        n = args.messages
        print(f"broker: Kafka {broker.KAFKA_VERSION} on {bootstrap}; {os.cpu_count()} cores")
        rate = asyncio.run(produce_raw(bootstrap, f"bench-in-{run_id}", n))
        print(f"producer alone: {rate:,.0f} msg/s")
        ceiling = asyncio.run(raw_passthrough(bootstrap, f"bench-in-{run_id}",
                                              f"bench-out-{run_id}", n))
        print(f"1. ceiling, aiokafka consume→produce: {ceiling:,.0f} msg/s")

        records = sim_events(n)
        produced = asyncio.run(produce(bootstrap, records))
        print(f"   ({len(records):,} simulator events produced at {produced:,.0f} msg/s)")
        rules = home / "rules"
        shutil.copytree(REPO / "rules", rules)
        (rules / "bench_probe.yaml").write_text(PROBE_RULE, encoding="utf-8")
        port = 19464
        worker = start_worker(bootstrap, rules, f"bench-{run_id}", port, home / "worker.log",
                              args.worker_args.split())
        if args.worker_args:
            print(f"   (worker started with {args.worker_args})")
        wait_metrics(port, worker)
        seconds, alerts = until_consumed(port, len(records))
        engine = len(records) / seconds
        print(f"2. engine end to end: {engine:,.0f} events/s consumed, {alerts / seconds:,.0f} "
              f"alerts/s published; {100 * engine / ceiling:.1f}% of the ceiling")

        settle_s, records = settled(port)
        print(f"   the backlog's state written {settle_s:.0f} s after its last event was "
              f"consumed ({records:,.0f} changelog records since then); latency measured after")
        offered = args.latency_rate or engine / 2
        pauses = ("yujing_gc_full_pause_seconds_count", "yujing_gc_full_pause_seconds_sum")
        before = metrics_of(port, *pauses)
        latencies = asyncio.run(probe_latency(bootstrap, offered, args.latency_seconds,
                                              run_id, worker.pid))
        after = metrics_of(port, *pauses)
        if latencies:
            q = statistics.quantiles(latencies, n=100)
            collections = after[pauses[0]] - before[pauses[0]]
            paused = after[pauses[1]] - before[pauses[1]]
            print(f"3. latency at {offered:,.0f} events/s (after 5 s of warm-up): "
                  f"p50 {q[49] * 1000:.0f} ms, "
                  f"p99 {q[98] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
                  f"({len(latencies)} probes; {collections:.0f} full garbage collections "
                  f"meanwhile, {paused * 1000:.0f} ms)")
        for name, what in (("yujing_batch_seconds", "batches scored"),
                           ("yujing_state_flush_seconds", "state flushes"),
                           ("yujing_gc_full_pause_seconds", "full garbage collections")):
            print(f"   worker, whole run: {histogram(port, name)} ({what})")
    finally:
        if worker is not None:
            stop_group(worker, 60)
        if cfg is not None:
            broker.stop(cfg)
        if args.keep:
            print(f"(worker log and broker data under {home})")
        else:
            shutil.rmtree(home, ignore_errors=True)


async def _topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, DEFAULT_PARTITIONS, 1) for n in names])
    finally:
        await admin.close()


if __name__ == "__main__":
    main()
