"""A broker outage as an operator lives it: how much each process logs, and what it reports.

Starts its own broker (free ports, a temporary home), then a worker, ``yujing dispatch run``
and ``yujing track`` against it, each with a metrics port; stops the broker for
``--outage`` seconds and starts it again. Prints, per process, the log lines written while the
broker was down and in the minute after, and what ``yujing_broker_connected`` and ``/readyz``
said before, during and after (when the process serves them).

    python bench/outage.py [--outage 20] [--after 30]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine import broker
from engine.kafka_client.admin import ensure_topics
from tests.integration.kafkakit import free_ports, yujing_process


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def probe(port: int) -> str:
    """``connected=<gauge> ready=<status>`` from the process's metrics server."""
    gauge = "-"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as page:
            for line in page.read().decode().splitlines():
                if line.startswith("yujing_broker_connected "):
                    gauge = line.split()[1]
    except OSError:
        gauge = "?"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as page:
            ready = str(page.status)
    except urllib.error.HTTPError as exc:
        ready = str(exc.code)
    except OSError:
        ready = "?"
    return f"connected={gauge} ready={ready}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=20.0, help="seconds the broker is down")
    parser.add_argument("--after", type=float, default=30.0,
                        help="seconds watched after the broker is back")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="yujing-outage-"))
    port, controller, *metrics_ports = free_ports(5)
    cfg = broker.BrokerConfig(port=port, controller_port=controller, home=home / "kafka",
                              heap="512m")
    broker.start(cfg, timeout=180)
    asyncio.run(ensure_topics(cfg.bootstrap))
    common = ("--bootstrap", cfg.bootstrap)
    commands = {
        "worker": ("worker", "--rules", str(REPO / "rules"), "--app-id", "outage-bench",
                   "--metrics-port", str(metrics_ports[0])),
        "dispatch": ("dispatch", "run", "--group-id", "outage-bench-dispatch",
                     "--metrics-port", str(metrics_ports[1])),
        "track": ("track", "--every", "10s", "--metrics-port", str(metrics_ports[2])),
    }
    logs = {name: home / f"{name}.log" for name in commands}
    ports = dict(zip(commands, metrics_ports, strict=False))
    try:
        with ExitStack() as stack:
            procs: dict[str, subprocess.Popen[bytes]] = {
                name: stack.enter_context(yujing_process(logs[name], *command, *common))
                for name, command in commands.items()}
            time.sleep(40)  # started, topics read, group joined
            before = {name: probe(ports[name]) for name in procs}
            start = {name: lines(logs[name]) for name in procs}
            broker.stop(cfg)
            time.sleep(args.outage / 2)
            during = {name: probe(ports[name]) for name in procs}
            time.sleep(args.outage / 2)
            down = {name: lines(logs[name]) - start[name] for name in procs}
            broker.start(cfg, timeout=180)
            back = {name: lines(logs[name]) for name in procs}
            time.sleep(args.after)
            after = {name: probe(ports[name]) for name in procs}
            later = {name: lines(logs[name]) - back[name] for name in procs}
            alive = {name: proc.poll() is None for name, proc in procs.items()}
    finally:
        broker.stop(cfg)
    print(f"broker down {args.outage:g} s, watched {args.after:g} s after; logs in {home}")
    print("| process | lines while down | lines after | before | during | after | alive |")
    print("|---|---:|---:|---|---|---|---|")
    for name in commands:
        print(f"| {name} | {down[name]} | {later[name]} | {before[name]} | {during[name]} | "
              f"{after[name]} | {alive[name]} |")


if __name__ == "__main__":
    main()
