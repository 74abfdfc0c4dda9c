"""A broker outage, on a real broker of the test's own: visible on each process's metrics port,
quiet in its log, and the worker scores on once the broker is back.

The broker is stopped for about 15 s under a worker and a dispatcher: both report
``yujing_broker_connected 0`` and answer ``/readyz`` with 503, each writes a few dozen lines
where it wrote thousands (repeats are counted, ``engine.log_repeats``), and once the broker is
started again both are ready again and a gas-smell ticket produced then gives its alert.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from engine import broker
from engine.kafka_client.admin import ensure_topics
from tests.integration.kafkakit import (
    dumps,
    free_ports,
    produce,
    read_until,
    run,
    yujing_process,
)
from tests.rulekit import rule_text

pytestmark = pytest.mark.broker

TICKET = "events.hotline.ticket"
OUTAGE_S = 15.0
QUIET_LINES = 100
"""Most log lines a process may write while the broker is down (it wrote about 1,200 in 20 s
and the worker 2,456 before repeats were counted)."""


@pytest.fixture
def cfg(tmp_path: Path) -> Iterator[broker.BrokerConfig]:
    port, controller_port = free_ports(2)
    cfg = broker.BrokerConfig(port=port, controller_port=controller_port,
                              home=tmp_path / "kafka", heap="512m")
    broker.start(cfg, timeout=180)
    try:
        asyncio.run(ensure_topics(cfg.bootstrap))
        yield cfg
    finally:
        broker.stop(cfg)


def health(port: int) -> tuple[str | None, int]:
    """The process's ``yujing_broker_connected`` and its ``/readyz`` status."""
    connected = None
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
        for line in page.read().decode().splitlines():
            if line.startswith("yujing_broker_connected "):
                connected = line.split()[1]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as page:
            return connected, page.status
    except urllib.error.HTTPError as exc:
        return connected, exc.code


def wait_until(what: str, ok: Callable[[], bool], procs: list[subprocess.Popen[bytes]],
               timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            assert proc.poll() is None, f"{proc.args} exited while waiting for {what}"
        try:
            if ok():
                return
        except OSError:  # the metrics port not open yet
            pass
        time.sleep(0.5)
    raise TimeoutError(f"not {what} after {timeout:.0f} s")


def lines(log: Path) -> int:
    return log.read_bytes().count(b"\n")


def test_a_broker_outage_is_reported_quietly_and_scoring_goes_on(cfg, tmp_path):
    run_id = uuid.uuid4().hex[:8]
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "gas.yaml").write_text(rule_text(
        id="e2e.ticket.gas", source=TICKET, kind="text", keywords=["燃气味"],
        summary="{ticket_id}: {text}"), encoding="utf-8")
    worker_port, dispatch_port = free_ports(2)
    logs = {"worker": tmp_path / "worker.log", "dispatch": tmp_path / "dispatch.log"}
    ports = {"worker": worker_port, "dispatch": dispatch_port}
    with ExitStack() as stack:
        procs = [
            stack.enter_context(yujing_process(
                logs["worker"], "worker", "--rules", str(rules), "--bootstrap", cfg.bootstrap,
                "--app-id", f"outage-{run_id}", "--metrics-port", str(worker_port))),
            stack.enter_context(yujing_process(
                logs["dispatch"], "dispatch", "run", "--bootstrap", cfg.bootstrap,
                "--group-id", f"outage-dispatch-{run_id}",
                "--metrics-port", str(dispatch_port))),
        ]

        def all_health(connected: str, ready: int) -> Callable[[], bool]:
            return lambda: all(health(port) == (connected, ready) for port in ports.values())

        wait_until("connected and ready", all_health("1.0", 200), procs, 180)
        before = {name: lines(log) for name, log in logs.items()}
        stopped = time.monotonic()
        broker.stop(cfg)
        wait_until("disconnected and not ready", all_health("0.0", 503), procs, 30)
        for port in ports.values():
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
            assert refused.value.read().decode() == f"broker {cfg.bootstrap} not answering\n"
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as page:
                assert page.status == 200  # alive all the same
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        written = {name: lines(log) - before[name] for name, log in logs.items()}
        broker.start(cfg, timeout=180)
        wait_until("connected and ready again", all_health("1.0", 200), procs, 180)

        ticket = f"{run_id}-K1"
        run(produce(cfg.bootstrap, [(TICKET, ticket.encode(), dumps({
            "event_id": f"{run_id}-1", "ts": time.time(), "ticket_id": ticket,
            "category": "gas", "status": "new", "text": "楼道里有燃气味"}))]))
        alerts = run(read_until(cfg.bootstrap, "alerts",
                                wanted=lambda alert: alert.get("key") == ticket,
                                done=lambda got: len(got) >= 1,
                                give_up=lambda: procs[0].poll() is not None))
        assert [(a["model_id"], a["state"]) for a in alerts] == [("e2e.ticket.gas", "firing")]
    for name, count in written.items():
        assert count < QUIET_LINES, (
            f"{name} wrote {count} lines while the broker was down:\n"
            + logs[name].read_text(errors="replace")[-5000:])
