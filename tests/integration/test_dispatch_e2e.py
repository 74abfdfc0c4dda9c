"""Dispatch end to end through the real broker: alerts and feedback in, work orders out.

One ``yujing dispatch run`` process serves the module (restarted once by the restart test). Its
routing file gives the test models short acknowledgement limits (2 s, and 15 s for the restart;
2 s at the town, 3 s at the district and 4 s at the city for the climb through the three
levels), so escalations happen while the test watches, with no input but the clock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.processes import stop_group
from tests.integration.kafkakit import REPO, dumps, produce, read_until, run, wait_for_log
from topics.records import Alert, Feedback

pytestmark = pytest.mark.broker

QUICK, RESTART = 2.0, 15.0
CLIMB = {"town": 2.0, "district": 3.0, "city": 4.0}
ROUTES = """\
defaults:
  # anything else on the broker (other tests' alerts) waits long enough not to churn
  ack_within: {red: 1h, orange: 1h, yellow: 1h, blue: 4h}
  levels: [{level: town}, {level: district}, {level: city}]
route:
  routes:
    - name: climb
      match: {model_id: "e2e.dispatch.climb.*"}
      levels: {town: {red: 2s}, district: {red: 3s}, city: {red: 4s}}
    - name: quick
      match: {model_id: "e2e.dispatch.quick.*"}
      ack_within: {red: 2s}
    - name: restart
      match: {model_id: "e2e.dispatch.restart.*"}
      ack_within: {red: 15s}
"""


class DispatchProcess:
    """``yujing dispatch run`` as a real process that a test can stop and start again."""

    def __init__(self, bootstrap: str, routes: Path, group_id: str, log: Path) -> None:
        self.cmd = [sys.executable, "-m", "engine.cli", "dispatch", "run", "--bootstrap",
                    bootstrap, "--routes", str(routes), "--group-id", group_id,
                    "--metrics-port", "0"]
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        after = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.cmd, cwd=REPO, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wait_for_log(self.log, "dispatching:", self.proc, after=after)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not go; the exit code of a clean stop."""
        proc, self.proc = self.proc, None
        return None if proc is None else stop_group(proc, 30)

    def died(self) -> bool:
        return self.proc is None or self.proc.poll() is not None

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def dispatcher(kafka, tmp_path_factory) -> Iterator[DispatchProcess]:
    folder = tmp_path_factory.mktemp("dispatch")
    routes = folder / "routes.yaml"
    routes.write_text(ROUTES, encoding="utf-8")
    process = DispatchProcess(kafka.bootstrap, routes, f"dispatch-e2e-{uuid.uuid4().hex[:6]}",
                              folder / "dispatch.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def make_alert(run_id: str, name: str, model: str = "e2e.dispatch.quick.tank", **fields: Any
               ) -> Alert:
    now = time.time()
    values: dict[str, Any] = {
        "alert_id": f"{run_id}-{name}", "model_id": model, "model_version": 1,
        "state": "firing", "severity": "red", "departments": ["emergency_management"],
        "key": f"{run_id}-{name}-key", "sources": ["events.hazchem.facility"],
        "grid_id": f"{run_id}-{name}-grid", "district": "xihu", "first_ts": now,
        "last_ts": now, "summary": f"{name} of {run_id}", **fields}
    return Alert.model_validate(values)


def send(bootstrap: str, *records: Alert | Feedback) -> None:
    run(produce(bootstrap, [
        ("alerts", r.alert_id.encode(), r.model_dump_json().encode()) if isinstance(r, Alert)
        else ("dispatch.feedback", r.order_id.encode(), r.model_dump_json().encode())
        for r in records]))


def latest_orders(bootstrap: str, alert_id: str, done=lambda orders: False,
                  timeout: float = 8.0) -> dict[str, dict[str, Any]]:
    """The latest record of every order that names ``alert_id``, by order id."""
    seen: dict[str, dict[str, Any]] = {}

    def collect(records: list[dict[str, Any]]) -> bool:
        seen.clear()
        seen.update({r["order_id"]: r for r in records})
        return done(seen)

    run(read_until(bootstrap, "dispatch.orders", done=collect,
                   wanted=lambda r: alert_id in r.get("alert_ids", []), timeout=timeout))
    return dict(seen)


def in_state(state: str):
    return lambda orders: any(r["state"] == state for r in orders.values())


def only(orders: dict[str, dict[str, Any]]) -> dict[str, Any]:
    assert len(orders) == 1, orders
    return next(iter(orders.values()))


def test_an_order_escalates_until_acknowledged_and_is_then_resolved(kafka, dispatcher):
    run_id = uuid.uuid4().hex[:8]
    alert = make_alert(run_id, "tank")
    send(kafka.bootstrap, alert)

    # Every record of the order, in order: created, then escalated with no input at all.
    history = run(read_until(kafka.bootstrap, "dispatch.orders",
                             done=lambda got: any(r["escalations"] >= 2 for r in got),
                             wanted=lambda r: alert.alert_id in r.get("alert_ids", []),
                             give_up=dispatcher.died, timeout=60))
    assert history, dispatcher.log_tail()
    created = history[0]
    assert (created["department"], created["level"], created["escalations"]) == (
        "emergency_management", "district", 0), dispatcher.log_tail()
    assert created["_key"] == created["order_id"]
    assert created["ack_due"] == created["created_at"] + QUICK
    assert created["ack_within_s"] == QUICK
    assert [h["what"] for h in created["history"]] == ["created"]
    escalations = [r for r in history if r["escalations"] > 0]
    assert [r["escalations"] for r in escalations[:2]] == [1, 2]
    previous = created
    for record in escalations:
        assert record["level"] == "city"
        assert record["department"] == "emergency_management"
        last = record["history"][-1]
        assert last["what"] == "escalated"
        assert last["at"] >= previous["ack_due"]  # never before it was due
        assert record["ack_due"] >= previous["ack_due"] + QUICK
        previous = record

    order_id = created["order_id"]
    acknowledged_at = time.time()
    send(kafka.bootstrap, Feedback(order_id=order_id, status="acknowledged",
                                   department="emergency_management", at=acknowledged_at,
                                   by="duty officer 7"))
    acked = only(latest_orders(kafka.bootstrap, alert.alert_id, timeout=30,
                               done=in_state("acknowledged")))
    assert acked["acknowledged_at"] == acknowledged_at
    assert acked["history"][-1]["by"] == "duty officer 7"
    time.sleep(3 * QUICK)  # periods in which an unacknowledged order would escalate again
    still = only(latest_orders(kafka.bootstrap, alert.alert_id))
    assert (still["state"], still["escalations"]) == ("acknowledged", acked["escalations"])

    resolved_at = time.time()
    send(kafka.bootstrap, Feedback(order_id=order_id, status="resolved",
                                   department="emergency_management", at=resolved_at,
                                   note="valve closed"))
    done = only(latest_orders(kafka.bootstrap, alert.alert_id, timeout=30,
                              done=in_state("resolved")))
    assert done["resolved_at"] == resolved_at
    assert done["history"][-1]["what"] == "resolved"
    assert done["history"][-1]["note"] == "valve closed"

    incidents = run(read_until(kafka.bootstrap, "incidents", done=lambda got: bool(got),
                               wanted=lambda r: r["incident_id"] == created["incident_id"]))
    assert incidents[-1]["alert_ids"] == [alert.alert_id]
    assert incidents[-1]["place"] == f"grid:{alert.grid_id}"


def test_an_order_climbs_town_district_city_by_the_clock_until_the_city_takes_it(kafka,
                                                                                  dispatcher):
    run_id = uuid.uuid4().hex[:8]
    alert = make_alert(run_id, "climb", model="e2e.dispatch.climb.tank",
                       town="xihu.lingyin", district="xihu")
    send(kafka.bootstrap, alert)

    history = run(read_until(kafka.bootstrap, "dispatch.orders",
                             done=lambda got: any(r["level"] == "city" for r in got),
                             wanted=lambda r: alert.alert_id in r.get("alert_ids", []),
                             give_up=dispatcher.died, timeout=60))
    assert history and history[-1]["level"] == "city", dispatcher.log_tail()
    created, *climbed = history
    assert (created["level"], created["town"], created["ack_due"]) == (
        "town", "xihu.lingyin", created["created_at"] + CLIMB["town"]), dispatcher.log_tail()
    assert created["ack_within_by_level"] == CLIMB
    assert [r["level"] for r in climbed] == ["district", "city"]
    holds = climbed[-1]["levels"]
    assert [(h["level"], h["place"], h["ack_within_s"]) for h in holds] == [
        ("town", "xihu.lingyin", 2.0), ("district", "xihu", 3.0), ("city", None, 4.0)]
    # each level had its own time, and no climb came before it was due
    assert holds[1]["since"] >= holds[0]["since"] + CLIMB["town"]
    assert holds[2]["since"] >= holds[1]["since"] + CLIMB["district"]
    assert climbed[-1]["history"][-1]["note"] == (
        "not acknowledged within 3s at the district level (xihu): escalated to the city level "
        "(command_center)")

    # The city's command centre takes it: the climb and the re-escalations stop.
    send(kafka.bootstrap, Feedback(order_id=created["order_id"], status="acknowledged",
                                   department="command_center", at=time.time(),
                                   by="city duty officer"))
    acked = only(latest_orders(kafka.bootstrap, alert.alert_id, timeout=30,
                               done=in_state("acknowledged")))
    time.sleep(2 * CLIMB["city"])
    still = only(latest_orders(kafka.bootstrap, alert.alert_id))
    assert (still["state"], still["level"], still["escalations"]) == (
        "acknowledged", "city", acked["escalations"])


def test_a_silenced_alert_is_grouped_but_makes_no_order(kafka, dispatcher):
    run_id = uuid.uuid4().hex[:8]
    silenced = make_alert(run_id, "silenced", silenced_by=["maintenance-1"])
    send(kafka.bootstrap, silenced)
    incidents = run(read_until(kafka.bootstrap, "incidents", done=lambda got: bool(got),
                               wanted=lambda r: silenced.alert_id in r["alert_ids"],
                               give_up=dispatcher.died, timeout=60))
    assert incidents, dispatcher.log_tail()
    assert incidents[0]["alert_states"] == {silenced.alert_id: ["firing", "red", 0]}
    time.sleep(2 * QUICK)  # time enough to have made and escalated an order, were it wrong
    assert latest_orders(kafka.bootstrap, silenced.alert_id, timeout=3) == {}


def test_malformed_records_and_unusable_feedback_go_to_the_dead_letter_topic(kafka,
                                                                              dispatcher):
    run_id = uuid.uuid4().hex[:8]
    positions = run(produce(kafka.bootstrap, [
        ("alerts", f"{run_id}-bad".encode(), b'{"alert_id": "' + run_id.encode() + b'"'),
        ("dispatch.feedback", f"{run_id}-nope".encode(),
         dumps({"order_id": f"{run_id}-nope", "status": "acknowledged",
                "department": "transport", "at": 1.0})),
    ]))
    letters = run(read_until(kafka.bootstrap, "events.deadletter",
                             done=lambda got: len(got) >= 2,
                             wanted=lambda r: run_id in str(r.get("key")),
                             give_up=dispatcher.died, timeout=60))
    got = sorted((d["source_topic"], d["partition"], d["offset"], d["reason"]) for d in letters)
    (p_alert, o_alert), (p_feedback, o_feedback) = positions
    assert got == sorted([
        ("alerts", p_alert, o_alert,
         "not JSON: unexpected end of data: line 1 column 24 (char 23)"),
        ("dispatch.feedback", p_feedback, o_feedback, f"no work order '{run_id}-nope'"),
    ]), dispatcher.log_tail()
    assert not dispatcher.died()  # and it goes on


def test_a_restarted_dispatcher_escalates_the_orders_awaiting_acknowledgement(kafka,
                                                                              dispatcher):
    run_id = uuid.uuid4().hex[:8]
    answered = make_alert(run_id, "answered", model="e2e.dispatch.restart.tank")
    waiting = make_alert(run_id, "waiting", model="e2e.dispatch.restart.tank")
    send(kafka.bootstrap, answered, waiting)
    first = only(latest_orders(kafka.bootstrap, answered.alert_id, done=bool, timeout=60))
    pending = only(latest_orders(kafka.bootstrap, waiting.alert_id, done=bool, timeout=60))
    send(kafka.bootstrap, Feedback(order_id=first["order_id"], status="acknowledged",
                                   department="emergency_management", at=time.time()))
    only(latest_orders(kafka.bootstrap, answered.alert_id, timeout=30,
                       done=in_state("acknowledged")))
    assert pending["escalations"] == 0 and time.time() < pending["ack_due"]

    assert dispatcher.stop() == 0  # a clean stop on SIGTERM
    assert "dispatch stopped" in dispatcher.log_tail()
    dispatcher.start()

    escalated = only(latest_orders(kafka.bootstrap, waiting.alert_id, timeout=60,
                                   done=lambda o: any(r["escalations"] >= 1 for r in o.values())))
    assert escalated["escalations"] == 1, dispatcher.log_tail()
    assert escalated["order_id"] == pending["order_id"]
    assert escalated["level"] == "city"
    assert escalated["history"][-1]["what"] == "escalated"
    assert escalated["history"][-1]["at"] >= pending["ack_due"]
    # the schedule continued from the restored due time, not from the restart
    assert escalated["ack_due"] == pending["ack_due"] + RESTART
    assert [h["what"] for h in escalated["history"]].count("created") == 1
    answered_now = only(latest_orders(kafka.bootstrap, answered.alert_id))
    assert (answered_now["state"], answered_now["escalations"]) == ("acknowledged", 0)
