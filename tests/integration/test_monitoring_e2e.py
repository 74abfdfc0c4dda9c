"""Monitoring on real parts: Prometheus (Debian's) scraping a real worker, dispatch and tracker
on the real broker while alerts, work orders, escalations and feedback flow; every dashboard
query returns series, every alerting rule evaluates without error over metrics that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from engine.processes import stop_group
from tests.integration.kafkakit import (
    REPO,
    dumps,
    free_ports,
    produce,
    quick_ack_routes,
    read_until,
    run,
    silence_key,
    wait_for_log,
    worker_process,
    yujing_process,
)
from tests.rulekit import FACILITY, rule_text

sys.path.insert(0, str(REPO / "monitoring" / "grafana"))
import build_dashboards

pytestmark = pytest.mark.broker

RULES_FILE = REPO / "monitoring" / "prometheus" / "yujing-rules.yml"
def api(port: int, path: str, **params: str) -> Any:
    url = f"http://127.0.0.1:{port}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]


def query(port: int, promql: str) -> list[dict[str, Any]]:
    return api(port, "query", query=promql)["result"]


def wait_until(what: str, check: Any, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1.0)
    pytest.fail(f"timed out waiting for {what}")


def prometheus_config(tmp_path: Path, ports: dict[str, int]) -> Path:
    jobs = "".join(f"""
  - job_name: yujing-{job}
    static_configs:
      - targets: ["127.0.0.1:{port}"]""" for job, port in ports.items())
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {RULES_FILE}
scrape_configs:{jobs}
""", encoding="utf-8")
    return config


def test_prometheus_scrapes_every_process_and_every_query_and_rule_works(kafka, tmp_path):
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.fail("prometheus is not installed: `apt-get install prometheus` (.ci/run does)")
    run_id = "m" + uuid.uuid4().hex[:8]
    rules = tmp_path / "rules"
    rules.mkdir()
    only_ours = f'facility_id == "{run_id}-F"'
    (rules / "level.yaml").write_text(rule_text(
        id=f"mon.{run_id}.level", source=FACILITY, kind="threshold", severity="red",
        where=only_ours, condition="level_pct >= 95", clear="level_pct < 90",
        summary="tank {tank_id} at {level_pct}%"), encoding="utf-8")
    (rules / "hot.yaml").write_text(rule_text(
        id=f"mon.{run_id}.hot", source=FACILITY, kind="threshold", severity="yellow",
        where=only_ours, condition="temp_c >= 60", summary="tank {tank_id} hot"),
        encoding="utf-8")
    routes = quick_ack_routes(tmp_path / "routes.yaml", f"mon.{run_id}.*", "2s")
    worker_port, dispatch_port, track_port, prom_port = free_ports(4)
    tank, hot, quiet = (f"{run_id}-T{i}" for i in "AHQ")
    silence_key(kafka.bootstrap, quiet)

    def event(n: int, tank_id: str, **fields: Any) -> tuple[str, bytes, bytes]:
        return (FACILITY, tank_id.encode(), dumps({
            "event_id": f"{run_id}-{n}", "ts": time.time(), "tank_id": tank_id,
            "facility_id": f"{run_id}-F", "grid_id": f"{run_id}-G{n}", "district": "xihu",
            **fields}))

    config = prometheus_config(tmp_path, {"worker": worker_port, "dispatch": dispatch_port,
                                          "track": track_port})
    with worker_process(kafka.bootstrap, rules, f"mon-{run_id}", tmp_path / "worker.log",
                        "--metrics-port", str(worker_port)) as worker, \
            yujing_process(tmp_path / "dispatch.log", "dispatch", "run", "--bootstrap",
                           kafka.bootstrap, "--routes", str(routes), "--group-id",
                           f"dispatch-{run_id}", "--metrics-port", str(dispatch_port)), \
            yujing_process(tmp_path / "track.log", "track", "--bootstrap", kafka.bootstrap,
                           "--every", "1s", "--metrics-port", str(track_port)), \
            prometheus_process(prometheus, config, tmp_path, prom_port):
        wait_for_log(tmp_path / "worker.log", "reference topics read to their end", worker)
        # Scraped before the first alert, as a Prometheus running all along would have.
        wait_until("the worker's counters scraped at 0", lambda: query(
            prom_port, f'yujing_alerts_published_total{{model="mon.{run_id}.hot"}} == 0'))
        run(produce(kafka.bootstrap, [event(1, tank, level_pct=97.0), event(2, hot, temp_c=70.0),
                                      event(3, quiet, level_pct=99.0)]))

        def orders(done: Any) -> dict[str, dict[str, Any]]:
            got = run(read_until(kafka.bootstrap, "dispatch.orders", done=done, timeout=90,
                                 wanted=lambda r: run_id in str(r)))
            return {o["order_id"]: o for o in got}

        def escalated(got: list[dict[str, Any]]) -> bool:
            return any(o["key"] == tank and o["escalations"] >= 1 for o in got) and \
                any(o["key"] == hot for o in got)
        by_id = orders(escalated)
        level_order = next(o for o in by_id.values() if o["key"] == tank)
        hot_order = next(o for o in by_id.values() if o["key"] == hot)
        run(produce(kafka.bootstrap, [
            ("dispatch.feedback", order["order_id"].encode(), dumps({
                "order_id": order["order_id"], "status": status,
                "department": order["department"], "at": time.time(), "by": "duty desk"}))
            for order, status in ((level_order, "acknowledged"), (level_order, "resolved"),
                                  (hot_order, "false_alarm"))] + [event(4, tank, level_pct=80.0)]))

        # Tracking's false-alarm rate is the last figure to exist: a closed order scored.
        wait_until("the false-alarm rate scraped", lambda: query(
            prom_port, f'yujing_false_alarm_rate{{model="mon.{run_id}.hot"}}'))
        wait_until("a rate over two scrapes", lambda: query(
            prom_port, "sum(rate(yujing_events_consumed_total[1m])) > 0"))

        # A model's first alert shows in increase(): its series was there before it, at 0.
        wait_until("the first alerts counted by increase()", lambda: query(
            prom_port, f'sum(increase(yujing_alerts_published_total{{state="firing", '
                       f'model=~"mon.{run_id}.*"}}[5m])) >= 2'), timeout=30)
        assert {r["metric"]["job"] for r in query(prom_port, "up == 1")} >= {
            "yujing-worker", "yujing-dispatch", "yujing-track"}
        empty = [q for q in build_dashboards.queries() if not query(prom_port, q)]
        assert not empty, f"dashboard queries with no series: {empty}"

        groups = api(prom_port, "rules")["groups"]
        rules_seen = [rule for group in groups for rule in group["rules"]]
        assert len(rules_seen) == RULES_FILE.read_text().count("- alert:")
        wait_until("every rule evaluated", lambda: all(
            r.get("lastEvaluation", "").startswith("2") for g in api(prom_port, "rules")[
                "groups"] for r in g["rules"]), timeout=30)
        for rule in (r for g in api(prom_port, "rules")["groups"] for r in g["rules"]):
            assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))
            for name in set(re.findall(r"\b(yujing_[a-z_]+|up)\b", rule["query"])):
                assert query(prom_port, f'count({{__name__="{name}"}})'), \
                    f"{rule['name']} reads {name}, which no process exports"


@contextmanager
def prometheus_process(binary: str, config: Path, tmp_path: Path, port: int
                       ) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "prometheus.log").open("ab")
    proc = subprocess.Popen([binary, f"--config.file={config}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=log, stderr=log, start_new_session=True)
    try:
        wait_until("Prometheus ready", lambda: _ready(port), timeout=60)
        yield proc
    finally:
        stop_group(proc, 30)
        log.close()


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False
