"""Scale-out: two yujing workers in one consumer group on partitioned topics.

    python bench/scaleout.py [--messages 100000] [--rounds 1] [--partitions 4]
                             [--alert-duration 12h] [--port 19292] [--bootstrap HOST:PORT]

1. Throughput: ``--messages`` simulator events of every department are consumed by one worker,
   then by two workers in one consumer group. Each run is a consumer group of its own (a fresh
   app id, whose offsets are set to the end of every department topic first), its workers start
   and join the group before the events are produced, and the figure runs from the first event
   consumed to the last: no start-up and no rebalance in it. Events/s of each and the ratio;
   ``--rounds`` repeats the pair (order alternating) and takes medians, as the load of a shared
   machine comes and goes.
2. Identical alerts after a rebalance: one fixed set of events, ``--alert-duration`` of the
   simulated city at its normal rate (seed 7; 12 hours are ~90,000 events with every model's
   injected incidents inside, where as many events at 8x cover two hours of night with hardly
   an incident), is scored three times, each by a fresh consumer group reading that set:
   (a) one worker alone; (a') one worker alone again, the control: what differs between two runs
   without any rebalance; (b) one worker, joined by a second after about a third of the events
   (a rebalance mid-stream), the first leaving at two thirds (a second rebalance; ``--leave-at
   0`` keeps both). A run's alerts are the records of ``alerts`` after that topic's end offsets
   at the run's start, read once the group has committed the whole set and ``alerts`` is quiet.
   The sets of (alert_id, state) are compared; duplicates (delivery is at-least-once) are
   counted apart; differences are grouped by model kind. Each run's state changelog is then
   read back in write order, counting rule states whose newest event time went back (state
   lost, or replaced by an older copy): without a rebalance that never happens.

   The simulator's events carry historical timestamps, so every deadline is already due when a
   worker's 1-second wall-clock timer runs: whether an absence, a window emptied by time or an
   unanswered sequence fires between two events of one key depends on whether a tick fell
   between their batches. Kinds with deadlines ("timer" in the tables) can therefore differ
   between any two runs, the control included; kinds decided at events alone should not.

It starts its own broker (under a temporary folder, on --port) unless --bootstrap is given.
Topics are created with --partitions partitions; with a count other than the registry's (4), the
workers are started through ``engine.worker.run_worker`` with that count, as ``yujing worker``
has no option for it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import pickle
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiokafka
import faust
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import StaleMetadata

from bench.throughput import (
    TICK,
    cpu_seconds,
    metric,
    metrics_of,
    own_broker,
    produce,
    sim_events,
    start_worker,
    wait_metrics,
)
from engine import broker
from engine.core import stream_of
from engine.kafka_client.admin import ensure_topics
from engine.kafka_client.partitions import partition_of
from engine.processes import stop_group
from engine.rule_files.loader import load_rules
from engine.worker import REPARTITION_SUFFIX, STATE_TABLE
from models.durations import parse_duration
from simulator.base import SimContext, parse_start
from simulator.run import Simulation, reference_city
from topics.registry import ALERTS, ALL_TOPICS, DEFAULT_PARTITIONS, EVENT_TOPICS

Offsets = dict[TopicPartition, int]
Pair = tuple[str, str]
"""(alert_id, state)"""

CONSUMED = "yujing_events_consumed_total"
PUBLISHED = "yujing_alerts_published_total"
REPEATED = "yujing_events_repeated_total"
SKIPPED = "yujing_events_skipped_by_consumer_total"
REWINDS = "yujing_consumer_rewinds_total"
ALERT_SEED = 7

# A worker with a partition count other than the registry's (``yujing worker`` has no option).
WORKER_CODE = """\
import sys
from pathlib import Path
from engine.worker import WorkerSettings, run_worker
bootstrap, rules, app_id, port, partitions = sys.argv[1:6]
run_worker(WorkerSettings(bootstrap=bootstrap, rules=[Path(rules)], app_id=app_id,
                          metrics_port=int(port), partitions=int(partitions)),
           loglevel="warning")
"""


# -- the broker's side: offsets and groups ---------------------------------------------------


async def _end_offsets(bootstrap: str, topics: list[str]) -> Offsets:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        tps = [TopicPartition(t["topic"], p["partition"])
               for t in await admin.describe_topics(topics) if t["error_code"] == 0
               for p in t["partitions"]]
    finally:
        await admin.close()
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        for _ in range(20):
            try:
                return dict(await consumer.end_offsets(tps))
            except StaleMetadata:  # a topic just created: its leaders are not known yet
                await asyncio.sleep(0.5)
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


def end_offsets(bootstrap: str, topics: list[str]) -> Offsets:
    return asyncio.run(_end_offsets(bootstrap, topics))


async def _commit(bootstrap: str, group: str, offsets: Offsets) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(dict(offsets))
    finally:
        await consumer.stop()


def start_group_at(bootstrap: str, group: str, offsets: Offsets) -> None:
    """Commit ``offsets`` for a group nobody has joined yet: its workers start reading there."""
    asyncio.run(_commit(bootstrap, group, offsets))


@dataclasses.dataclass
class GroupView:
    state: str
    members: list[set[int]]
    """Per member, the department-topic partitions it consumes."""
    committed: Offsets


async def _group(bootstrap: str, group: str) -> GroupView:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = (await admin.describe_consumer_groups([group]))[0].to_object()["groups"][0]
        members = []
        for member in described["members"]:
            partitions: set[int] = set()
            if member["member_assignment"]:
                assignment = ConsumerProtocolMemberAssignment.decode(
                    member["member_assignment"])
                partitions = {tp.partition for tp in assignment.partitions()
                              if tp.topic in EVENT_TOPICS}
            members.append(partitions)
        committed = {tp: om.offset for tp, om in
                     (await admin.list_consumer_group_offsets(group)).items()}
        return GroupView(described["state"], members, committed)
    finally:
        await admin.close()


def group(bootstrap: str, name: str) -> GroupView:
    return asyncio.run(_group(bootstrap, name))


def wait_group(bootstrap: str, name: str, members: int, workers: Workers | None = None,
               timeout: float = 180.0) -> GroupView:
    """Until the group is stable with ``members`` members (fewer if some of ``workers``
    crashed), each consuming some partition."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        expected = members if workers is None else min(members, len(workers.running))
        if expected == 0:
            raise RuntimeError("no worker left: " + "; ".join(workers.crashes if workers else []))
        with contextlib.suppress(Exception):  # the coordinator may not know the group yet
            view = group(bootstrap, name)
            if view.state == "Stable" and len(view.members) == expected \
                    and all(view.members):
                return view
        time.sleep(0.5)
    raise TimeoutError(f"group {name} never became stable with {members} members")


async def _read(bootstrap: str, start: Offsets, timeout: float = 120.0) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                max_poll_records=5000)
    await consumer.start()
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        end = await consumer.end_offsets(list(start))
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        remaining = {tp for tp in start if start[tp] < end[tp]}
        while remaining and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for m in messages:
                    tp = TopicPartition(m.topic, m.partition)
                    if m.offset < end[tp]:
                        out.append(orjson.loads(m.value))
            remaining = {tp for tp in remaining if await consumer.position(tp) < end[tp]}
        if remaining:
            raise TimeoutError(f"alerts not read to the end: {sorted(remaining)}")
        return out
    finally:
        await consumer.stop()


def read_alerts(bootstrap: str, start: Offsets) -> list[dict[str, Any]]:
    """Every alert record after ``start`` (end offsets of ``alerts`` taken before a run)."""
    return asyncio.run(_read(bootstrap, start))


# -- workers and CPU -------------------------------------------------------------------------


class Workers:
    """The worker processes of this benchmark, each with its own metrics port.

    A worker that exits without being stopped is a crash: it is recorded with the exception at
    the end of its log, and the figures go on with the workers left.
    """

    def __init__(self, bootstrap: str, rules: Path, partitions: int, logs: Path,
                 first_port: int) -> None:
        self.bootstrap, self.rules, self.partitions, self.logs = (bootstrap, rules, partitions,
                                                                  logs)
        self.next_port = first_port
        self.running: dict[int, subprocess.Popen[bytes]] = {}
        """Started and not stopped, by metrics port."""
        self.last: dict[int, float] = {}
        """Events consumed at the latest reading, by metrics port."""
        self.repeated: dict[int, float] = {}
        """Events skipped as already applied (per entity) at the latest reading, by port."""
        self.skipped: dict[int, float] = {}
        """Offsets the consumer jumped over, at the latest reading, by port."""
        self.rewinds: dict[int, float] = {}
        """Partitions sought back after the consumer fetched ahead, by port."""
        self.crashes: list[str] = []

    def start(self, app_id: str) -> int:
        """Start a worker in group ``app_id``; its metrics port once they answer."""
        port = self.next_port
        self.next_port += 1
        log = self.logs / f"worker-{port}.log"
        if self.partitions == DEFAULT_PARTITIONS:
            proc = start_worker(self.bootstrap, self.rules, app_id, port, log)
        else:
            proc = subprocess.Popen(
                [sys.executable, "-c", WORKER_CODE, self.bootstrap, str(self.rules), app_id,
                 str(port), str(self.partitions)],
                cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                start_new_session=True)
        self.running[port] = proc
        self.last[port] = 0.0
        wait_metrics(port, proc)
        return port

    def alive(self, port: int) -> bool:
        self.check()
        return port in self.running

    def check(self) -> list[str]:
        """Record workers that exited on their own; return the new crash reports."""
        new = []
        for port, proc in list(self.running.items()):
            if proc.poll() is not None:
                del self.running[port]
                new.append(f"worker on port {port} exited with code {proc.returncode} after "
                           f"{self.last[port]:,.0f} events: "
                           f"{crash_reason(self.logs / f'worker-{port}.log')}")
        self.crashes.extend(new)
        return new

    def consumed(self, port: int) -> float:
        """Events the worker has consumed (its last reading once it is gone)."""
        if port in self.running:
            try:
                self.last[port] = metric(port, CONSUMED)
            except OSError:
                self.check()
        return self.last[port]

    def read_counters(self, port: int) -> float:
        """Read the worker's repeat, skip and rewind counters (its last reading once it is
        gone); return the events it skipped as already applied."""
        if port in self.running:
            with contextlib.suppress(OSError):
                read = metrics_of(port, REPEATED, SKIPPED, REWINDS)
                self.repeated[port], self.skipped[port], self.rewinds[port] = (
                    read[REPEATED], read[SKIPPED], read[REWINDS])
        return self.repeated.get(port, 0.0)

    def stop(self, port: int) -> None:
        self.read_counters(port)
        proc = self.running.pop(port, None)
        if proc is not None:
            stop_group(proc, 60)

    def stop_all(self) -> None:
        for port in list(self.running):
            self.stop(port)


def crash_reason(log: Path) -> str:
    """The exception that crashed a worker (the first Faust reports, else the last in its log),
    with the line that raised it."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        return "(no log)"
    first = next((i for i, line in enumerate(lines) if "Crashed reason=" in line), None)
    order = range(first, len(lines)) if first is not None else range(len(lines) - 1, -1, -1)
    for i in order:
        if re.match(r"^[A-Za-z_.]*(Error|Exception|Exit|Interrupt)\b", lines[i]):
            where = next((lines[j] for j in range(i - 1, -1, -1)
                          if lines[j].startswith('File "')), "")
            return f"{lines[i]} ({where.replace(str(REPO) + '/', '')})"
    return lines[-1] if lines else "(empty log)"


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICK, sum(values) / TICK


# -- 1. throughput ---------------------------------------------------------------------------


@dataclasses.dataclass
class Throughput:
    events_per_s: float
    alerts_per_s: float
    split: list[float]
    partitions: list[set[int]]
    cpu_workers: float
    """Cores the workers used over the measured span."""
    cpu_broker: float
    machine_busy: float
    """Fraction of the machine's cores busy over the span (anything running, not only us)."""


def throughput_run(bootstrap: str, workers: Workers, app_id: str, count: int,
                   records: list[tuple[str, bytes, bytes]], broker_pid: int | None
                   ) -> Throughput:
    start_group_at(bootstrap, app_id, end_offsets(bootstrap, list(EVENT_TOPICS)))
    ports = [workers.start(app_id) for _ in range(count)]
    pids = [workers.running[port].pid for port in ports] + [broker_pid or 0]
    view = wait_group(bootstrap, app_id, count)
    time.sleep(2.0)  # table recovery (empty changelog) after the assignment
    producer = threading.Thread(target=lambda: asyncio.run(produce(bootstrap, records)))
    producer.start()
    target = len(records)
    first = None
    cpu0: list[float] = []
    machine0 = (0.0, 0.0)
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        done = sum(workers.consumed(port) for port in ports)
        if first is None and done > 0:
            first = time.perf_counter()
            cpu0 = [cpu_seconds(pid) for pid in pids]
            machine0 = machine_cpu()
        if done >= target:
            break
        if workers.check():
            raise RuntimeError("a worker crashed: " + "; ".join(workers.crashes))
        time.sleep(0.2)
    else:
        raise TimeoutError(f"only {done:,.0f} of {target:,} events consumed")
    seconds = time.perf_counter() - (first or time.perf_counter())
    cpu1 = [cpu_seconds(pid) for pid in pids]
    machine1 = machine_cpu()
    producer.join()
    split = [workers.consumed(port) for port in ports]
    alerts = sum(metric(port, PUBLISHED) for port in ports)
    for port in ports:
        workers.stop(port)
    used = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    return Throughput(
        events_per_s=target / seconds, alerts_per_s=alerts / seconds,
        split=[s / sum(split) for s in split], partitions=view.members,
        cpu_workers=sum(used[:-1]) / seconds, cpu_broker=used[-1] / seconds,
        machine_busy=(machine1[0] - machine0[0]) / max(machine1[1] - machine0[1], 1e-9))


# -- 2. alerts after a rebalance -------------------------------------------------------------


def city_events(duration: str, seed: int) -> list[tuple[str, bytes, bytes]]:
    """Every event of ``duration`` of the simulated city at its normal rate."""
    begin = parse_start("2024-06-03T00:00:00")
    ctx = SimContext(seed=seed, start=begin, end=begin + parse_duration(duration), rate=1.0,
                     city=reference_city(REPO / "rules"))
    return [(e.topic, e.key.encode(), orjson.dumps(e.value)) for e in Simulation(ctx).events()]


@dataclasses.dataclass
class AlertRun:
    records: list[dict[str, Any]]
    seconds: float
    notes: list[str]
    changelog: Rollbacks | None = None
    startup_s: float = 0.0
    """From starting worker 1 to its first event consumed."""
    rate: float = 0.0
    """Events/s of the run, from the first event consumed to the end."""
    complete: bool = True
    """False when every worker was gone before the set was done."""


def _note(notes: list[str], text: str) -> None:
    notes.append(f"{time.strftime('%H:%M:%S')} {text}")


def wait_done(bootstrap: str, app_id: str, end: Offsets, workers: Workers,
              timeout: float = 1800.0) -> bool:
    """Until the group has committed every event of the set and every re-keyed event, and no
    alert has been published for 5 s (the timer fires due deadlines every second). False if
    every worker is gone first."""
    deadline = time.monotonic() + timeout
    repartition = f"{app_id}-{REPARTITION_SUFFIX}"
    while time.monotonic() < deadline:
        committed = group(bootstrap, app_id).committed
        rekeyed = end_offsets(bootstrap, [repartition])
        if all(committed.get(tp, 0) >= offset for tp, offset in {**end, **rekeyed}.items()):
            break
        workers.check()
        if not workers.running:
            return False
        time.sleep(1.0)
    else:
        raise TimeoutError(f"group {app_id} did not commit the whole set")
    quiet_since, last = time.monotonic(), end_offsets(bootstrap, [ALERTS.name])
    while time.monotonic() - quiet_since < 5.0 and time.monotonic() < deadline:
        time.sleep(1.0)
        now = end_offsets(bootstrap, [ALERTS.name])
        if now != last:
            quiet_since, last = time.monotonic(), now
    return True


def alert_run(bootstrap: str, workers: Workers, app_id: str, start: Offsets, end: Offsets,
              join_at: float | None, leave_at: float, alone: AlertRun | None = None
              ) -> AlertRun:
    """Score the set between ``start`` and ``end`` in a fresh group; return its alerts.

    With ``join_at``, a second worker is started so that it joins once about that fraction of
    the set has been consumed (early by the start-up time and rate of the single-worker run
    ``alone``), and (``leave_at`` > 0) the first is stopped once the group has consumed that
    fraction and the second has consumed something.
    """
    total = sum(end[tp] - start[tp] for tp in end)
    alerts_from = end_offsets(bootstrap, [ALERTS.name])
    start_group_at(bootstrap, app_id, start)
    notes: list[str] = []
    seen = len(workers.crashes)

    def crashes() -> None:
        nonlocal seen
        workers.check()
        for report in workers.crashes[seen:]:
            _note(notes, f"CRASH: {report}")
        seen = len(workers.crashes)

    began = time.perf_counter()
    port1 = workers.start(app_id)
    _note(notes, "worker 1 up")
    threading.Thread(target=lambda: _first_event(port1, began), daemon=True).start()
    ports = [port1]
    if join_at is not None:
        # The second worker's start-up includes a rebalance: about twice the first's.
        early = 0.0 if alone is None else alone.rate * 2 * alone.startup_s
        launch_at = max(0.05 * total, join_at * total - early)
        while (done := workers.consumed(port1)) < launch_at and workers.alive(port1):
            time.sleep(0.2)
        crashes()
        _note(notes, f"worker 2 started, {done / total:.0%} of the set consumed")
        port2 = workers.start(app_id)
        ports.append(port2)
        view = wait_group(bootstrap, app_id, 2, workers)
        crashes()
        done = sum(workers.consumed(port) for port in ports)
        _note(notes, f"rebalance 1 done, {done / total:.0%} consumed; partitions per member: "
              + " / ".join(str(sorted(m)) for m in view.members))
        if leave_at and workers.alive(port1):
            c1, c2 = workers.consumed(port1), workers.consumed(port2)
            while workers.alive(port1):
                c1, c2 = workers.consumed(port1), workers.consumed(port2)
                if (c1 + c2 >= leave_at * total and c2 > 0) or c1 + c2 >= total:
                    break
                time.sleep(0.2)
            crashes()
            if workers.alive(port1):
                if c2 == 0:
                    _note(notes, "worker 2 consumed nothing before the end: no mid-stream "
                          "rebalance was tested (use a longer --alert-duration)")
                workers.stop(port1)
                _note(notes, f"worker 1 stopped (SIGTERM), {(c1 + c2) / total:.0%} consumed "
                      f"(worker 1 {c1:,.0f}, worker 2 {c2:,.0f} events)")
            if workers.running:
                wait_group(bootstrap, app_id, 1, workers)
                _note(notes, "rebalance 2 done: worker 2 alone")
    complete = wait_done(bootstrap, app_id, end, workers)
    crashes()
    seconds = time.perf_counter() - began
    started = _FIRST.get(port1)
    read = sum(workers.consumed(port) for port in ports)
    repeated = sum(workers.read_counters(port) for port in ports)
    skipped = sum(workers.skipped.get(port, 0.0) for port in ports)
    rewinds = sum(workers.rewinds.get(port, 0.0) for port in ports)
    _note(notes, f"{'done' if complete else 'INCOMPLETE: no worker left'}: {read:,.0f} events "
          f"consumed for a set of {total:,}"
          + (f" ({read - total:,.0f} read twice: at-least-once after a rebalance; "
             f"{repeated:,.0f} (event, entity) applications skipped as repeats)"
             if read > total else "")
          + (f"; {rewinds:,.0f} partitions read again after the consumer fetched ahead"
             if rewinds else "")
          + (f"; THE CONSUMER SKIPPED {skipped:,.0f} events (never scored)" if skipped else ""))
    workers.stop_all()
    startup = (started or began) - began
    return AlertRun(read_alerts(bootstrap, alerts_from), seconds, notes,
                    changelog_rollbacks(bootstrap, app_id), startup,
                    total / max(seconds - startup, 1e-9), complete)


_FIRST: dict[int, float] = {}
"""perf_counter of the first event a worker (by metrics port) consumed."""


def _first_event(port: int, since: float, timeout: float = 600.0) -> None:
    while time.perf_counter() - since < timeout:
        with contextlib.suppress(OSError):
            if metric(port, CONSUMED) > 0:
                _FIRST[port] = time.perf_counter()
                return
        time.sleep(0.1)


@dataclasses.dataclass
class Rollbacks:
    """Rule states in a run's changelog that went back in event time."""

    records: int
    rollbacks: int
    keys: set[str]
    examples: list[str]


async def _changelog(bootstrap: str, topic: str) -> tuple[list[Any], int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                max_poll_records=10000)
    await consumer.start()
    try:
        tps = list(await _end_offsets(bootstrap, [topic]))
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[Any] = []
        deadline = time.monotonic() + 300
        remaining = [tp for tp in tps if end[tp] > 0]
        while remaining and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(messages)
            remaining = [tp for tp in remaining if await consumer.position(tp) < end[tp]]
        return out, len(tps)
    finally:
        await consumer.stop()


def changelog_rollbacks(bootstrap: str, app_id: str) -> Rollbacks | None:
    """Read the run's state changelog in write order and find every rule state whose ``seen``
    (event time of the newest event it scored; it only grows while state is kept) is older
    than in an earlier record of the same key: state lost, or replaced by an older copy."""
    try:
        messages, partitions = asyncio.run(
            _changelog(bootstrap, f"{app_id}-{STATE_TABLE}-changelog"))
        newest: dict[tuple[str, str, str], tuple[float, int]] = {}
        found = Rollbacks(len(messages), 0, set(), [])
        for m in sorted(messages, key=lambda m: (m.timestamp, m.partition, m.offset)):
            if not m.value:
                continue
            key = m.key.decode().strip('"')
            for stream, entity in pickle.loads(m.value).items():
                for state_key, state in entity.items():
                    ident = (key, stream, state_key.split("@")[0])
                    before = newest.get(ident)
                    if before is None or state.seen >= before[0]:
                        newest[ident] = (state.seen, m.timestamp)
                        continue
                    found.rollbacks += 1
                    found.keys.add(key)
                    if len(found.examples) < 3:
                        found.examples.append(
                            f"{key} {ident[2]}: seen {_fmt_ts(before[0])} (record written "
                            f"{_wall(before[1])}) -> {_fmt_ts(state.seen)} (written "
                            f"{_wall(m.timestamp)}, changelog partition {m.partition}, "
                            f"events of the key in partition "
                            f"{partition_of(key.encode(), partitions)})")
        return found
    except Exception as exc:  # a diagnostic: never the reason the benchmark fails
        print(f"   (changelog of {app_id} not checked: {exc!r})")
        return None


@dataclasses.dataclass
class Comparison:
    pairs_a: Counter[Pair]
    pairs_b: Counter[Pair]
    missing: set[Pair]
    extra: set[Pair]
    info: dict[Pair, dict[str, Any]]
    keys_a: set[tuple[str, str, str]]
    """(model_id, key, state) of every record: which keys alerted, whatever the ids."""
    keys_b: set[tuple[str, str, str]]

    def duplicates(self, which: Counter[Pair]) -> int:
        return sum(n - 1 for n in which.values() if n > 1)


def compare(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> Comparison:
    pairs_a = Counter((r["alert_id"], r["state"]) for r in a)
    pairs_b = Counter((r["alert_id"], r["state"]) for r in b)
    info = {(r["alert_id"], r["state"]): r for r in [*a, *b]}
    return Comparison(pairs_a, pairs_b, set(pairs_a) - set(pairs_b),
                      set(pairs_b) - set(pairs_a), info,
                      {(r["model_id"], r["key"], r["state"]) for r in a},
                      {(r["model_id"], r["key"], r["state"]) for r in b})


def by_kind_table(comparison: Comparison, kinds: dict[str, tuple[str, bool]],
                  names: tuple[str, str]) -> list[str]:
    rows: dict[tuple[bool, str], list[int]] = defaultdict(lambda: [0] * 6)

    def add(model_id: str, column: int) -> None:
        kind, timer = kinds.get(model_id, ("?", False))
        rows[(timer, kind)][column] += 1

    for column, pairs in enumerate((comparison.pairs_a, comparison.pairs_b,
                                    comparison.missing, comparison.extra)):
        for pair in pairs:
            add(comparison.info[pair]["model_id"], column)
    for model_id, _, _ in comparison.keys_a - comparison.keys_b:
        add(model_id, 4)
    for model_id, _, _ in comparison.keys_b - comparison.keys_a:
        add(model_id, 5)
    a, b = names
    lines = [f"   {'kind':<12} {'decided':<7} {a:>7} {b:>7} {'missing':>8} {'extra':>6}"
             f"   keys missing  keys extra"]
    for (timer, kind), (n_a, n_b, missing, extra, k_missing, k_extra) in sorted(rows.items()):
        lines.append(f"   {kind:<12} {'timer' if timer else 'events':<7} {n_a:>7} {n_b:>7} "
                     f"{missing:>8} {extra:>6}   {k_missing:>12} {k_extra:>11}")
    return lines


def _fmt_ts(ts: float | None) -> str:
    """An event time (UTC)."""
    if ts is None or ts == float("-inf"):
        return "-"
    return time.strftime("%m-%d %H:%M:%SZ", time.gmtime(ts))


def _wall(ms: int) -> str:
    """A Kafka record time (local wall clock, as in the worker logs)."""
    return time.strftime("%H:%M:%S", time.localtime(ms / 1000)) + f".{ms % 1000:03d}"


def differences(comparison: Comparison, kinds: dict[str, tuple[str, bool]],
                control: Comparison | None, limit: int = 10,
                rekeyed: set[str] | None = None) -> list[str]:
    """Up to ``limit`` differences, event-decided kinds first, topic-keyed rules first."""
    noisy = set() if control is None else control.missing | control.extra
    rows = []
    for label, pairs in (("missing", comparison.missing), ("extra", comparison.extra)):
        for pair in pairs:
            r = comparison.info[pair]
            kind, timer = kinds.get(r["model_id"], ("?", False))
            re_keyed = bool(rekeyed) and r["model_id"] in rekeyed
            rows.append((timer, re_keyed, r["model_id"], r["key"], r.get("first_ts") or 0.0,
                         label, kind, r, pair in noisy))
    rows.sort(key=lambda row: row[:5])
    out = []
    for timer, is_rekeyed, model_id, key, _, label, kind, r, in_control in rows[:limit]:
        re_keyed = ", re-keyed" if is_rekeyed else ""
        out.append(f"   {label:<7} {model_id} ({kind}{', timer' if timer else ''}{re_keyed}) "
                   f"key {key} "
                   f"{r['state']} {r['alert_id']} first {_fmt_ts(r.get('first_ts'))} "
                   f"last {_fmt_ts(r.get('last_ts'))}"
                   f"{'  [also differs in the control]' if in_control else ''}")
    if len(rows) > limit:
        out.append(f"   … and {len(rows) - limit} more")
    return out


def report_comparison(title: str, comparison: Comparison, names: tuple[str, str],
                      kinds: dict[str, tuple[str, bool]], control: Comparison | None,
                      rekeyed: set[str] | None = None) -> None:
    a, b = names
    event_kinds = [p for p in comparison.missing | comparison.extra
                   if not kinds.get(comparison.info[p]["model_id"], ("?", False))[1]]
    print(f"   {title}: alerts ({a}) {len(comparison.pairs_a):,}, ({b}) "
          f"{len(comparison.pairs_b):,} distinct (alert_id, state); duplicates in ({a}) "
          f"{comparison.duplicates(comparison.pairs_a):,}, in ({b}) "
          f"{comparison.duplicates(comparison.pairs_b):,}; missing from ({b}) "
          f"{len(comparison.missing):,}, extra in ({b}) {len(comparison.extra):,} "
          f"({len(event_kinds):,} of them of kinds decided at events)")
    print(f"   by kind: distinct (alert_id, state) of each run, missing from / extra in ({b}); "
          f"keys missing/extra: (model, key, state) alerted in one run only, whatever the ids")
    for line in by_kind_table(comparison, kinds, names):
        print(line)
    if comparison.missing or comparison.extra:
        print(f"   differences (first {min(10, len(comparison.missing | comparison.extra))}, "
              "kinds decided at events first):")
        for line in differences(comparison, kinds, control, rekeyed=rekeyed):
            print(line)


# -- main ------------------------------------------------------------------------------------


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB, Python "
            f"{platform.python_version()}, aiokafka {aiokafka.__version__}, faust-streaming "
            f"{faust.__version__}; load average at start {load}")


def revision() -> str:
    """The commit the workers run, and whether the engine has uncommitted changes."""
    try:
        head = subprocess.run(["git", "log", "-1", "--format=%h %cd", "--date=iso"], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "engine", "models", "topics"],
                               cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "(not a git checkout)"
    return head + (" + uncommitted changes in engine/models/topics" if dirty.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000,
                        help="events of each throughput run")
    parser.add_argument("--alert-duration", default="12h",
                        help="simulated time of the fixed set scored for the alert comparison")
    parser.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS,
                        help="partitions of every department topic")
    parser.add_argument("--port", type=int, default=19292)
    parser.add_argument("--bootstrap")
    parser.add_argument("--metrics-port", type=int, default=19470,
                        help="first of the workers' metrics ports (one more per worker)")
    parser.add_argument("--join-at", type=float, default=1 / 3,
                        help="fraction of the set consumed when worker 2 starts in run (b)")
    parser.add_argument("--leave-at", type=float, default=2 / 3,
                        help="fraction consumed when worker 1 stops in run (b) (0: never)")
    parser.add_argument("--no-control", action="store_true",
                        help="skip run (a'), the second single-worker run")
    parser.add_argument("--rounds", type=int, default=1,
                        help="throughput rounds (one worker, two workers; order alternates)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-alerts", action="store_true")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (worker logs, broker data)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="yujing-scaleout-"))
    cfg, bootstrap, broker_pid = own_broker(args.bootstrap, args.port, home)
    run_id = str(int(time.time()))
    # A snapshot of the rules: a worker reloads changed files, and rules/ may change meanwhile.
    rules = home / "rules"
    shutil.copytree(REPO / "rules", rules)
    (home / "logs").mkdir()
    workers = Workers(bootstrap, rules, args.partitions, home / "logs", args.metrics_port)
    try:
        specs = [dataclasses.replace(s, partitions=args.partitions) if s.role == "event" else s
                 for s in ALL_TOPICS.values()]
        asyncio.run(ensure_topics(bootstrap, specs))
        counts = Counter(tp.topic for tp in end_offsets(bootstrap, list(EVENT_TOPICS)))
        wrong = {t: n for t, n in counts.items() if n != args.partitions}
        if wrong or len(counts) != len(EVENT_TOPICS):
            raise SystemExit(f"department topics exist with other partition counts: {wrong}")
        loaded = load_rules([rules])
        kinds = {r.id: (r.spec.kind, type(r.model).uses_deadlines) for r in loaded.rules}
        # Rules whose key is not their topics' key read events re-keyed from every partition of
        # the source: the order in which a key's events arrive then depends on how the source
        # partitions' consumption interleaves, which a different split of them changes.
        rekeyed = {r.id for r in loaded.rules
                   if any(stream_of(r, topic) != topic for topic in r.spec.sources)}
        print(f"scale-out benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}")
        print(f"machine: {machine()}")
        print(f"code: {revision()}")
        print(f"broker: Kafka {broker.KAFKA_VERSION if cfg else '(external)'} on {bootstrap}; "
              f"{len(loaded.rules)} rules; department topics with {args.partitions} partitions")

        if not args.skip_throughput:
            records = sim_events(args.messages)
            print(f"1. throughput, {len(records):,} simulator events (seed 11, every "
                  "department), produced once the workers have joined their group")
            runs: dict[int, list[Throughput]] = {1: [], 2: []}
            for round_ in range(args.rounds):
                # Alternate the order, so a load that comes and goes favours neither.
                for count in (1, 2) if round_ % 2 == 0 else (2, 1):
                    run = throughput_run(bootstrap, workers,
                                         f"scale-tp{count}-{round_}-{run_id}", count, records,
                                         broker_pid)
                    runs[count].append(run)
                    split = (" / ".join(f"{s:.0%}" for s in run.split) + "; partitions per "
                             "member " + " / ".join(str(sorted(p)) for p in run.partitions))
                    label = "one worker " if count == 1 else "two workers"
                    print(f"   {label}{f' (round {round_ + 1})' if args.rounds > 1 else ''}: "
                          f"{run.events_per_s:,.0f} events/s consumed, {run.alerts_per_s:,.0f} "
                          f"alerts/s; CPU: workers {run.cpu_workers:.2f} cores, broker "
                          f"{run.cpu_broker:.2f}, machine {run.machine_busy:.0%} busy"
                          + (f"; events split {split}" if count == 2 else ""))
            one = statistics.median(r.events_per_s for r in runs[1])
            two = statistics.median(r.events_per_s for r in runs[2])
            print(f"   ratio two/one: {two / one:.2f}"
                  + (f" (medians of {args.rounds} rounds: {two:,.0f} / {one:,.0f})"
                     if args.rounds > 1 else ""))
            print(f"   note: {os.cpu_count()} cores: the producer (first seconds), the broker and "
                  "both workers share them, so the ratio is bounded by the cores, not by the "
                  "design; \"machine busy\" counts every process, other users' included")

        if not args.skip_alerts:
            records = city_events(args.alert_duration, ALERT_SEED)
            start = end_offsets(bootstrap, list(EVENT_TOPICS))
            asyncio.run(produce(bootstrap, records))
            end = end_offsets(bootstrap, list(EVENT_TOPICS))
            size = sum(end.values()) - sum(start.values())
            print(f"2. alerts after a rebalance: one set of {size:,} simulator events "
                  f"({args.alert_duration} of the city from 2024-06-03 00:00, seed {ALERT_SEED}),"
                  " each run a fresh consumer group")
            results: dict[str, AlertRun] = {}
            plan: list[tuple[str, float | None]] = [("a", None)]
            if not args.no_control:
                plan.append(("a'", None))
            plan.append(("b", args.join_at))
            for name, join_at in plan:
                tag = name.replace("'", "2")
                results[name] = alert_run(bootstrap, workers, f"scale-{tag}-{run_id}", start, end,
                                          join_at, args.leave_at, results.get("a"))
                what = "one worker" if join_at is None else "two workers with rebalances"
                print(f"   ({name}) {what}: {len(results[name].records):,} alert records in "
                      f"{results[name].seconds:.0f} s")
                for note in results[name].notes:
                    print(f"       {note}")
                found = results[name].changelog
                if found is not None:
                    print(f"       state changelog: {found.records:,} records; "
                          f"{found.rollbacks:,} rule states went back in event time "
                          f"(state lost or replaced by an older copy) on {len(found.keys):,} keys")
                    for example in found.examples:
                        print(f"         e.g. {example}")
            control = None
            if "a'" in results:
                control = compare(results["a"].records, results["a'"].records)
                report_comparison("control, (a) vs (a')", control, ("a", "a'"), kinds, None,
                                  rekeyed)
            rebalanced = compare(results["a"].records, results["b"].records)
            if not results["b"].complete:
                print("   (b) is INCOMPLETE (its workers crashed): what follows counts the events "
                      "it never scored")
            report_comparison("rebalance, (a) vs (b)", rebalanced, ("a", "b"), kinds, control,
                              rekeyed)

            def at_events(c: Comparison, re_keyed: bool) -> int:
                return sum(1 for p in c.missing | c.extra
                           if not kinds.get(c.info[p]["model_id"], ("?", False))[1]
                           and (c.info[p]["model_id"] in rekeyed) == re_keyed)

            def at_events_text(c: Comparison) -> str:
                return f"{at_events(c, False):,} of topic-keyed rules, " \
                       f"{at_events(c, True):,} of re-keyed rules"

            rollbacks = ", ".join(
                f"({name}) {'?' if run.changelog is None else f'{run.changelog.rollbacks:,}'}"
                for name, run in results.items())
            if workers.crashes:
                print(f"   worker crashes: {len(workers.crashes)} (see the runs above)")
            print("   in short: differences in kinds decided at events: "
                  + (f"control {at_events_text(control)}; " if control else "")
                  + f"rebalance {at_events_text(rebalanced)}; changelog states gone back in "
                  f"event time: {rollbacks}")
            print("   (a re-keyed rule sees a key's events in the order the source partitions "
                  "interleave, which the split between workers changes; no decision waits for "
                  "stragglers, so a breach older than a clear already seen is ignored)")
    finally:
        workers.stop_all()
        if cfg is not None:
            broker.stop(cfg)
        if args.keep:
            print(f"(worker logs under {home / 'logs'})")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
