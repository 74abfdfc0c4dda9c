"""Performance tracking and alert history end to end through the real broker.

The test plays dispatch and the department systems: it produces alerts, an incident, work orders
(the latest state per order, as dispatch publishes them) and feedback straight to the topics,
with a few malformed records among them. A ``yujing track --every 1s`` process must publish the
exact scorecards to ``performance.scorecards`` (and /metrics), move them when a department's
false-alarm feedback arrives, and ``yujing alerts show | list | tail`` and ``yujing report`` must
tell the same story from the topics.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from typing import Any

import pytest

from tests.integration.kafkakit import (
    REPO,
    produce,
    read_until,
    run,
    wait_for_log,
    yujing_process,
)
from topics.records import Alert, Feedback, Incident, OrderEvent, WorkOrder

pytestmark = pytest.mark.broker

COMPARED = ("alerts", "not_dispatched", "orders", "acknowledged", "resolved", "false_alarms",
            "open_backlog", "ack_p50_s", "ack_p90_s", "resolve_p50_s", "resolve_p90_s",
            "sla_met", "sla_total", "sla_compliance", "false_alarm_rate")


def yujing_once(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(port: int, until_seen: str, timeout: float = 10.0) -> str:
    """/metrics, fetched again until it shows ``until_seen`` (the gauges follow the scorecards
    they are set from by a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as page:
            exposed = page.read().decode()
        if until_seen in exposed or time.monotonic() > deadline:
            return exposed
        time.sleep(0.2)


def figures(card: dict[str, Any]) -> dict[str, Any]:
    return {name: card[name] for name in COMPARED}


def test_scorecards_follow_orders_and_feedback_and_history_tells_the_story(kafka, tmp_path):
    run_id = uuid.uuid4().hex[:8]
    now = float(int(time.time()))  # whole seconds: every duration below is exact
    fire, water = f"fire-{run_id}", f"water-{run_id}"
    noisy, steady = f"e2e.{run_id}.noisy", f"e2e.{run_id}.steady"

    def alert(name: str, model: str, departments: list[str], at: float, state: str = "firing",
              **fields: Any) -> Alert:
        return Alert(alert_id=f"{run_id}-{name}", model_id=model, model_version=1, state=state,
                     severity="red", departments=departments, key=f"{run_id}-T-{name}",
                     sources=["events.hazchem.facility"], first_ts=now + at, last_ts=now + at,
                     summary=f"{name} {state}", emitted_at=now + at, **fields)

    def order(name: str, model: str, department: str, severity: str, created: float,
              ack: float | None = None, state: str = "open",
              resolved: float | None = None) -> WorkOrder:
        created_at = now + created
        history = [OrderEvent(at=created_at, what="created", by="dispatch")]
        if ack is not None:
            history.append(OrderEvent(at=created_at + ack, what="acknowledged", by="王工"))
        if state in ("resolved", "false_alarm"):
            history.append(OrderEvent(at=created_at + (resolved or ack or 0), what=state))
        return WorkOrder(
            order_id=f"{run_id}-{name}", incident_id=f"{run_id}-INC", department=department,
            alert_ids=[f"{run_id}-{name.lower().replace('o', 'a')}"], model_ids=[model],
            severity=severity, key=f"{run_id}-T", summary=f"order {name}", state=state,
            created_at=created_at, ack_due=created_at + 300, history=history,
            acknowledged_at=None if ack is None else created_at + ack,
            resolved_at=None if resolved is None else created_at + resolved)

    alerts = [
        alert("a1", noisy, [fire], -3010),
        alert("a1", noisy, [fire], -3010),  # redelivered
        alert("a1", noisy, [fire], -1790, state="resolved"),
        alert("a2", noisy, [fire], -2010),
        alert("a5", noisy, [water], -1810),
        alert("a9", noisy, [fire], -1000, silenced_by=["maint-1"]),  # never dispatched
        alert("a3", steady, [water], -5010),
        alert("a4", steady, [water], -610),
    ]
    first_o1 = order("O1", noisy, fire, "red", -3000)  # superseded by its later record
    orders = [
        first_o1,
        order("O1", noisy, fire, "red", -3000, ack=120, state="resolved", resolved=1200),
        order("O2", noisy, fire, "red", -2000, ack=600, state="acknowledged"),  # SLA missed
        order("O3", steady, water, "yellow", -5000),  # never acknowledged, 1 h passed: missed
        order("O4", steady, water, "blue", -600),  # not acknowledged, 4 h not up: not judged
        order("O5", noisy, water, "orange", -1800, ack=300, state="false_alarm"),
    ]
    incident = Incident(incident_id=f"{run_id}-INC", place=f"key:{run_id}-T",
                        alert_ids=[f"{run_id}-a1", f"{run_id}-a2"], model_ids=[noisy],
                        severity="red", opened_at=now - 3005, updated_at=now - 2005)
    acknowledged = Feedback(order_id=f"{run_id}-O1", status="acknowledged", department=fire,
                            at=now - 2880, by="王工", note="on the way")

    def record(topic: str, key: str, value: Any) -> tuple[str, bytes, bytes]:
        body = value if isinstance(value, bytes) else value.model_dump_json().encode()
        return topic, key.encode(), body

    run(produce(kafka.bootstrap, [
        *(record("alerts", a.alert_id, a) for a in alerts),
        *(record("dispatch.orders", o.order_id, o) for o in orders),
        record("incidents", incident.incident_id, incident),
        record("dispatch.feedback", acknowledged.order_id, acknowledged),
        record("alerts", f"{run_id}-bad-alert", b"{not json"),
        record("dispatch.orders", f"{run_id}-bad-order", b'{"order_id": "x"}'),
        record("dispatch.feedback", f"{run_id}-bad-feedback", b'{"order_id": "x", "at": 1}'),
    ]))

    before = {
        f"department:{fire}": dict(
            alerts=3, not_dispatched=0, orders=2, acknowledged=2, resolved=1, false_alarms=0,
            open_backlog=1, ack_p50_s=120.0, ack_p90_s=600.0, resolve_p50_s=1200.0,
            resolve_p90_s=1200.0, sla_met=1, sla_total=2, sla_compliance=0.5,
            false_alarm_rate=0.0),
        f"department:{water}": dict(
            alerts=3, not_dispatched=0, orders=3, acknowledged=1, resolved=0, false_alarms=1,
            open_backlog=2, ack_p50_s=300.0, ack_p90_s=300.0, resolve_p50_s=None,
            resolve_p90_s=None, sla_met=1, sla_total=2, sla_compliance=0.5,
            false_alarm_rate=1.0),
        f"model:{noisy}": dict(
            alerts=4, not_dispatched=1, orders=3, acknowledged=3, resolved=1, false_alarms=1,
            open_backlog=1, ack_p50_s=300.0, ack_p90_s=600.0, resolve_p50_s=1200.0,
            resolve_p90_s=1200.0, sla_met=2, sla_total=3, sla_compliance=2 / 3,
            false_alarm_rate=0.5),
        f"model:{steady}": dict(
            alerts=2, not_dispatched=0, orders=2, acknowledged=0, resolved=0, false_alarms=0,
            open_backlog=2, ack_p50_s=None, ack_p90_s=None, resolve_p50_s=None,
            resolve_p90_s=None, sla_met=0, sla_total=1, sla_compliance=0.0,
            false_alarm_rate=None),
    }
    # The fire department says O2 was a false alarm: the noisy model's rate goes up.
    after = {**before,
             f"department:{fire}": {**before[f"department:{fire}"], "false_alarms": 1,
                                    "open_backlog": 0, "false_alarm_rate": 0.5},
             f"model:{noisy}": {**before[f"model:{noisy}"], "false_alarms": 2,
                                "open_backlog": 0, "false_alarm_rate": 2 / 3}}

    def latest(cards: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        by_key: dict[str, dict[str, Any]] = {}
        for card in cards:
            by_key[card["_key"]] = figures(card)
        return by_key

    def ours(card: dict[str, Any]) -> bool:
        return run_id in (card.get("_key") or "")

    log = tmp_path / "track.log"
    metrics_port = free_port()
    with yujing_process(log, "track", "--bootstrap", kafka.bootstrap, "--every", "1s",
                        "--metrics-port", str(metrics_port)) as tracker:
        cards = run(read_until(kafka.bootstrap, "performance.scorecards", wanted=ours,
                               done=lambda got: latest(got) == before,
                               give_up=lambda: tracker.poll() is not None))
        assert latest(cards) == before, log.read_text(errors="replace")[-3000:]
        assert {c["_key"] for c in cards} == set(before)
        card = cards[-1]
        assert card["_key"] == f"{card['scope']}:{card['name']}"
        assert card["period_end"] - card["period_start"] == 86400.0

        false_alarm = Feedback(order_id=f"{run_id}-O2", status="false_alarm", department=fire,
                               at=now + 1, by="李队", note="drill, not a leak")
        run(produce(kafka.bootstrap, [record("dispatch.feedback", false_alarm.order_id,
                                             false_alarm)]))
        cards = run(read_until(kafka.bootstrap, "performance.scorecards", wanted=ours,
                               done=lambda got: latest(got) == after,
                               give_up=lambda: tracker.poll() is not None))
        assert latest(cards) == after, log.read_text(errors="replace")[-3000:]

        rate_line = f'yujing_false_alarm_rate{{model="{noisy}"}} {2 / 3}'
        exposed = scrape(metrics_port, until_seen=rate_line)
        assert rate_line in exposed
        assert f'yujing_open_orders{{department="{water}"}} 2.0' in exposed
        assert (f'yujing_ack_seconds{{name="{noisy}",quantile="0.9",scope="model"}} 600.0'
                in exposed)
        assert f'yujing_sla_compliance{{name="{fire}",scope="department"}} 0.5' in exposed

    text = log.read_text(errors="replace")
    for bad in ("bad-alert", "bad-order", "bad-feedback"):
        assert f"skipped a record (key '{run_id}-{bad}')" in text
    assert "yujing.tracking: stopped" in text, text[-2000:]

    # A restarted tracker rebuilds the same figures from the topics alone (its gauges start
    # empty, so what they show it has read back).
    metrics_port = free_port()
    with yujing_process(tmp_path / "track2.log", "track", "--bootstrap", kafka.bootstrap,
                        "--every", "1s", "--metrics-port", str(metrics_port)) as tracker:
        wait_for_log(tmp_path / "track2.log", "published", tracker)
        exposed = scrape(metrics_port, until_seen=rate_line)
        assert rate_line in exposed
        assert f'yujing_open_orders{{department="{fire}"}} 0.0' in exposed

    # The daily report from the same topics gives the same figures.
    shown = yujing_once("report", "--bootstrap", kafka.bootstrap, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    reported = {f"{c['scope']}:{c['name']}": figures(c)
                for c in report["departments"] + report["models"] if run_id in c["name"]}
    assert reported == after
    assert [c["name"] for c in report["models"] if run_id in c["name"]] == [noisy, steady]

    # The story of the first alert: what fired, who got it, what happened.
    story = yujing_once("alerts", "show", f"{run_id}-a1", "--bootstrap", kafka.bootstrap)
    assert story.returncode == 0, story.stderr
    lines = story.stdout.splitlines()
    assert lines[0] == f"alert {run_id}-a1"
    assert [line.split()[3] for line in lines[4:6]] == ["firing", "resolved"]
    assert (f"Incident {run_id}-INC (key:{run_id}-T, open, red)" in story.stdout)
    assert (f"  order {run_id}-O1 → {fire} (district level), red" in story.stdout)
    assert "feedback: acknowledged from " + fire + " by 王工: on the way" in story.stdout
    assert story.stdout.rstrip().endswith(
        f"  {run_id}-O1: resolved; acknowledged after 2m (within the red limit of 5m); "
        "resolved after 20m")

    listed = yujing_once("alerts", "list", "--model", f"e2e.{run_id}.*", "--open",
                         "--bootstrap", kafka.bootstrap)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.rstrip().endswith("5 alerts")  # a1 resolved; a2 a3 a4 a5 a9 open
    assert f"{run_id}-a9" in listed.stdout and f"{run_id}-a1 " not in listed.stdout

    # tail: a record published after it starts shows as one line, once
    tail_log, tail_out = tmp_path / "tail.log", tmp_path / "tail.out"
    with yujing_process(tail_log, "alerts", "tail", "--model", noisy, "--bootstrap",
                        kafka.bootstrap, stdout=tail_out) as tail:
        wait_for_log(tail_log, "following new alerts", tail)
        late = alert("a6", noisy, [fire], 2)
        run(produce(kafka.bootstrap, [record("alerts", late.alert_id, late)] * 2))
        deadline = time.monotonic() + 60
        while late.alert_id not in tail_out.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # a duplicate line would have arrived with the first
    shown_lines = tail_out.read_text().splitlines()
    assert len(shown_lines) == 1 and shown_lines[0].endswith(f"a6 firing  ({late.alert_id})")
    assert tail.returncode == 0
