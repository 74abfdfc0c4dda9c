"""Faults on the real broker while a worker scores a simulated city, then the verifier's account.

    python bench/faults.py --fault kill9|broker|rebalance|none [--seed 3] [--duration 2h]
                           [--rate 80] [--port 19392] [--bootstrap HOST:PORT]

The events: ``--duration`` of the simulated hazchem and hotline departments (about 3,000 an
hour; most of their rules are decided at events), dated to end an hour before now, with three
events that break their topic's schema spread through them (dead-lettered). They are produced at
``--rate`` events/s into a fresh consumer group (its offsets set to the end of every department
topic first, so it reads nothing else), while:

- ``kill9``: the worker is killed with SIGKILL at a quarter, half and three quarters of the
  events produced, and started again each time (once the previous one has joined the group);
- ``broker``: once half the events are produced, the broker is stopped (SIGTERM) for
  ``--outage`` seconds and started again; the rest are produced after it is back;
- ``rebalance``: a second worker joins at a third, the first is stopped (SIGTERM) at two thirds;
- ``none``: nothing happens (the figures a fault is judged against).

Then it waits until the group has committed every event and every re-keyed record and ``alerts``
has been quiet for 5 s, reads the run's alerts and dead letters, and prints the account of
``engine.offline.verify`` against ``yujing replay`` of the same events. The tests in
``tests/integration/test_faults_e2e.py`` run the same functions on the test session's broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aiokafka import AIOKafkaProducer

from bench.scaleout import end_offsets, group, read_alerts, start_group_at, wait_group
from engine import broker
from engine.kafka_client.admin import ensure_topics
from engine.offline.verify import ProducedEvent, VerifyReport, skipped_ranges, verify
from engine.processes import stop_group
from engine.rule_files.loader import load_rules
from engine.worker import REPARTITION_SUFFIX
from models.durations import parse_duration
from simulator.base import SimContext, parse_start
from simulator.run import Simulation, reference_city
from topics.registry import ALERTS, DEADLETTER, EVENT_TOPICS

FAULTS = ("none", "kill9", "broker", "rebalance")
DEPARTMENTS = ["hazchem", "hotline"]


# -- the input -------------------------------------------------------------------------------


def city_events(seed: int, duration: str, departments: list[str] = DEPARTMENTS
                ) -> list[dict[str, Any]]:
    """Envelopes of ``duration`` of the simulated departments ending an hour ago (within the
    worker's default event-age horizon), with three events that break their schema (a vehicle
    reading without its position) at a quarter, half and three quarters."""
    span = parse_duration(duration)
    begin = (datetime.now() - timedelta(seconds=span + 3600)).strftime("%Y-%m-%dT%H:%M:%S")
    ctx = SimContext(seed=seed, start=parse_start(begin), end=parse_start(begin) + span,
                     rate=1.0, city=reference_city(REPO / "rules"))
    envelopes = [{"topic": e.topic, "key": e.key, "value": e.value}
                 for e in Simulation(ctx, only=departments).events()]
    vehicles = [i for i, e in enumerate(envelopes) if e["topic"] == "events.hazchem.vehicle"]
    for n, at in enumerate((len(envelopes) * 3 // 4, len(envelopes) // 2, len(envelopes) // 4)):
        source = envelopes[next((i for i in vehicles if i >= at), vehicles[-1])]
        broken = {k: v for k, v in source["value"].items() if k not in ("lat", "lon")}
        broken["event_id"] = f"{broken.get('event_id')}-broken-{n}"
        envelopes.insert(at, {"topic": source["topic"], "key": source["key"], "value": broken})
    return envelopes


class Producer:
    """Produces envelopes at a steady rate in a thread of its own, keeping each one's position.

    ``produce`` runs one phase (its own Kafka producer); ``sent`` counts what the broker has
    acknowledged, all phases together.
    """

    def __init__(self, bootstrap: str, envelopes: list[dict[str, Any]], rate: float) -> None:
        self.bootstrap, self.envelopes, self.rate = bootstrap, envelopes, rate
        self.produced: list[ProducedEvent] = []
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def sent(self) -> int:
        return len(self.produced)

    def start(self, until: int) -> None:
        """Produce the envelopes from the last one sent up to ``until`` (not included)."""
        self._thread = threading.Thread(target=self._run, args=(until,), daemon=True)
        self._thread.start()

    def join(self, timeout: float = 600.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError("the producer did not finish")
        if self.error is not None:
            raise RuntimeError("producing failed") from self.error

    def _run(self, until: int) -> None:
        try:
            asyncio.run(self._produce(until))
        except BaseException as exc:
            self.error = exc

    async def _produce(self, until: int) -> None:
        import orjson

        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, acks="all",
                                    enable_idempotence=True)
        await producer.start()
        try:
            began, first = time.monotonic(), self.sent
            chunk = max(1, int(self.rate / 10))
            for at in range(first, until, chunk):
                ahead = (at - first) / self.rate - (time.monotonic() - began)
                if ahead > 0:
                    await asyncio.sleep(ahead)
                batch = self.envelopes[at:min(until, at + chunk)]
                futures = [await producer.send(e["topic"], orjson.dumps(e["value"]),
                                               key=None if e["key"] is None else
                                               str(e["key"]).encode()) for e in batch]
                for envelope, future in zip(batch, futures, strict=True):
                    meta = await future
                    self.produced.append(ProducedEvent(
                        topic=envelope["topic"], key=envelope["key"], value=envelope["value"],
                        partition=meta.partition, offset=meta.offset))
        finally:
            await producer.stop()


# -- workers ---------------------------------------------------------------------------------


class Workers:
    """Worker processes of one consumer group; each one's log kept (a killed one's too)."""

    def __init__(self, bootstrap: str, rules: Path, app_id: str, logs: Path) -> None:
        self.bootstrap, self.rules, self.app_id, self.logs = bootstrap, rules, app_id, logs
        self.procs: list[subprocess.Popen[bytes]] = []
        self.notes: list[str] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.logs / f"worker-{len(self.procs) + 1}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "worker", "--rules", str(self.rules),
             "--bootstrap", self.bootstrap, "--app-id", self.app_id, "--metrics-port", "0",
             "--loglevel", "warning"],
            cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        self.note(f"worker {len(self.procs)} started (pid {proc.pid})")
        return proc

    @property
    def running(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def note(self, text: str) -> None:
        self.notes.append(f"{time.strftime('%H:%M:%S')} {text}")

    def wait_joined(self, members: int, timeout: float = 120.0) -> None:
        """Until the group is stable with ``members`` members, each reading some partition."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError("no worker running:\n" + self.log_tails())
            with contextlib.suppress(TimeoutError):
                wait_group(self.bootstrap, self.app_id, members, timeout=5.0)
                return
        raise TimeoutError(f"group {self.app_id} never stable with {members} members")

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.kill()
        proc.wait(10)
        self.note(f"worker pid {proc.pid} killed (SIGKILL)")

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        stop_group(proc, 60)
        self.note(f"worker pid {proc.pid} stopped (SIGTERM), exit code {proc.returncode}")

    def stop_all(self) -> None:
        for proc in self.running:
            stop_group(proc, 60)

    def logs_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))

    def log_tails(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}"
                         for p in sorted(self.logs.glob("*.log")))


def wait_done(bootstrap: str, workers: Workers, end: dict[Any, int], timeout: float) -> None:
    """Until the group has committed every event produced and every re-keyed record, then until
    ``alerts`` has been quiet for 5 s (the workers fire due deadlines every second)."""
    deadline = time.monotonic() + timeout
    repartition = f"{workers.app_id}-{REPARTITION_SUFFIX}"
    while True:
        with contextlib.suppress(Exception):  # the coordinator may be moving
            committed = group(bootstrap, workers.app_id).committed
            rekeyed = end_offsets(bootstrap, [repartition])
            if all(committed.get(tp, 0) >= offset for tp, offset in {**end, **rekeyed}.items()):
                break
        if not workers.running:
            raise RuntimeError("every worker exited:\n" + workers.log_tails())
        if time.monotonic() > deadline:
            raise TimeoutError("the group did not commit every event:\n" + workers.log_tails())
        time.sleep(1.0)
    quiet_since, last = time.monotonic(), end_offsets(bootstrap, [ALERTS.name])
    while time.monotonic() - quiet_since < 5.0 and time.monotonic() < deadline:
        time.sleep(1.0)
        now = end_offsets(bootstrap, [ALERTS.name])
        if now != last:
            quiet_since, last = time.monotonic(), now


# -- a run -----------------------------------------------------------------------------------


@dataclasses.dataclass
class FaultRun:
    report: VerifyReport
    notes: list[str]
    seconds: float


def _when_sent(producer: Producer, count: int, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while producer.sent < count:
        if producer.error is not None or time.monotonic() > deadline:
            producer.join(1.0)
            raise TimeoutError(f"only {producer.sent} of {count} events produced")
        time.sleep(0.1)


def run_fault(fault: str, bootstrap: str, envelopes: list[dict[str, Any]], rules: Path,
              workdir: Path, rate: float, restart_broker: Callable[[], None] | None = None,
              timeout: float = 300.0) -> FaultRun:
    """Produce ``envelopes`` at ``rate`` through ``fault`` and account for them.

    ``restart_broker`` (for ``broker``) stops the broker, waits and starts it again.
    """
    if fault not in FAULTS:
        raise ValueError(f"fault {fault!r}: one of {', '.join(FAULTS)}")
    began = time.monotonic()
    app_id = f"faults-{fault}-{int(time.time() * 1000)}"
    logs = workdir / app_id
    logs.mkdir(parents=True)
    start = end_offsets(bootstrap, list(EVENT_TOPICS))
    alerts_from = end_offsets(bootstrap, [ALERTS.name])
    letters_from = end_offsets(bootstrap, [DEADLETTER.name])
    start_group_at(bootstrap, app_id, start)
    workers = Workers(bootstrap, rules, app_id, logs)
    producer = Producer(bootstrap, envelopes, rate)
    total = len(envelopes)
    try:
        first = workers.start()
        workers.wait_joined(1)
        if fault == "broker":
            producer.start(total // 2)
            producer.join()
            workers.note(f"{producer.sent} events produced; the broker stops")
            assert restart_broker is not None, "the broker fault needs restart_broker"
            restart_broker()
            workers.note("the broker is back")
            producer.start(total)
        else:
            producer.start(total)
        if fault == "kill9":
            for quarter in (1, 2, 3):
                _when_sent(producer, total * quarter // 4)
                workers.kill(workers.running[0])
                workers.note(f"{producer.sent} events produced at the kill")
                workers.start()
                workers.wait_joined(1)
        elif fault == "rebalance":
            _when_sent(producer, total // 3)
            workers.start()
            workers.wait_joined(2)
            workers.note(f"worker 2 joined, {producer.sent} events produced")
            _when_sent(producer, total * 2 // 3)
            workers.stop(first)
            workers.note(f"{producer.sent} events produced when worker 1 stopped")
            workers.wait_joined(1)
        producer.join()
        workers.note(f"all {producer.sent} events produced")
        end = {tp: offset for tp, offset in end_offsets(bootstrap, list(EVENT_TOPICS)).items()
               if offset > start.get(tp, 0)}
        wait_done(bootstrap, workers, end, timeout)
        workers.note("the group committed every event; alerts quiet")
        committed = {(tp.topic, tp.partition): offset
                     for tp, offset in group(bootstrap, app_id).committed.items()}
        rekeyed = end_offsets(bootstrap, [f"{app_id}-{REPARTITION_SUFFIX}"])
        pending = sum(max(0, offset - committed.get((tp.topic, tp.partition), 0))
                      for tp, offset in rekeyed.items())
    finally:
        workers.stop_all()
    alerts = read_alerts(bootstrap, alerts_from)
    letters = read_alerts(bootstrap, letters_from)
    report = verify(producer.produced, alerts, letters, committed,
                    load_rules([rules]).rules, skipped=skipped_ranges(workers.logs_text()),
                    rekeyed_pending=pending, until=time.time())
    return FaultRun(report, workers.notes, time.monotonic() - began)


def print_run(fault: str, run: FaultRun) -> None:
    r = run.report
    print(f"fault {fault}: {run.seconds:.0f} s")
    for note in run.notes:
        print(f"   {note}")
    print(f"   {r.summary()}")
    print(f"   dead letters by reason: {r.dead_letter_reasons}; dead-lettered though replay "
          f"scored them: {r.dead_letters_replay_scored}; rule failures: {r.rule_failures}")
    for label, comparison in (("events", r.event_rules), ("timers", r.timer_rules)):
        for example in comparison.missing_examples:
            print(f"   missing ({label}) {example}")
        for example in comparison.extra_examples:
            print(f"   extra ({label}) {example}")
    for example in r.lost_examples:
        print(f"   lost {example}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--fault", choices=FAULTS, action="append",
                        help="repeatable; default: every fault")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--duration", default="2h")
    parser.add_argument("--rate", type=float, default=80.0, help="events/s produced")
    parser.add_argument("--outage", type=float, default=10.0,
                        help="seconds the broker stays stopped (--fault broker)")
    parser.add_argument("--port", type=int, default=19392)
    parser.add_argument("--bootstrap", help="an existing broker (not with --fault broker)")
    args = parser.parse_args()
    faults = args.fault or list(FAULTS)
    if args.bootstrap and "broker" in faults:
        parser.error("--fault broker stops and starts its own broker: leave out --bootstrap")

    home = Path(tempfile.mkdtemp(prefix="yujing-faults-"))
    cfg = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        cfg = broker.BrokerConfig(port=args.port, controller_port=args.port + 1,
                                  home=home / "kafka")
        broker.start(cfg, timeout=180)
        bootstrap = cfg.bootstrap
    rules = home / "rules"
    shutil.copytree(REPO / "rules", rules)  # rules/ may change while the workers read it

    def restart_broker() -> None:
        assert cfg is not None
        broker.stop(cfg)
        time.sleep(args.outage)
        broker.start(cfg, timeout=180)

    try:
        asyncio.run(ensure_topics(bootstrap))
        envelopes = city_events(args.seed, args.duration)
        print(f"{len(envelopes):,} events ({args.duration} of {', '.join(DEPARTMENTS)}, seed "
              f"{args.seed}, three breaking their schema) at {args.rate:.0f} events/s")
        for fault in faults:
            print_run(fault, run_fault(fault, bootstrap, envelopes, rules, home / "logs",
                                       args.rate, restart_broker))
    finally:
        if cfg is not None:
            broker.stop(cfg)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
