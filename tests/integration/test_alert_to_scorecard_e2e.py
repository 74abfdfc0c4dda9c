"""The whole loop through the real broker, every part a real process: an event → the worker's
alert → dispatch's work order → no acknowledgement → escalation to the city → acknowledgement →
resolution → the tracker's scorecard; a false-alarm feedback lowering a model's precision; a
silenced alert recorded but given no work order."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.integration.kafkakit import (
    dumps,
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

pytestmark = pytest.mark.broker

def latest(records: list[dict], field: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for record in records:
        out[record[field]] = record
    return out


def test_event_to_scorecard(kafka, tmp_path):
    run_id = "r" + uuid.uuid4().hex[:8]
    level_model, noisy_model = f"e2e.{run_id}.level", f"e2e.{run_id}.noisy"
    rules = tmp_path / "rules"
    rules.mkdir()
    # the worker reads the facility topic from its start: other tests' tanks are not this run's
    only_ours = f'facility_id == "{run_id}-F"'
    (rules / "level.yaml").write_text(rule_text(
        id=level_model, source=FACILITY, kind="threshold", severity="red", where=only_ours,
        condition="level_pct >= 95", clear="level_pct < 90",
        summary="tank {tank_id} at {level_pct}%"), encoding="utf-8")
    (rules / "noisy.yaml").write_text(rule_text(
        id=noisy_model, source=FACILITY, kind="threshold", severity="yellow", where=only_ours,
        condition="temp_c >= 60", summary="tank {tank_id} hot"), encoding="utf-8")
    routes = quick_ack_routes(tmp_path / "routes.yaml", f"e2e.{run_id}.*", "3s")
    tank, hot, quiet = (f"{run_id}-T{i}" for i in "AHQ")

    silence_key(kafka.bootstrap, quiet)

    def event(n, tank_id, **fields):
        return (FACILITY, tank_id.encode(), dumps({
            "event_id": f"{run_id}-{n}", "ts": time.time(), "tank_id": tank_id,
            "facility_id": f"{run_id}-F", "grid_id": f"{run_id}-G{n}", "district": "xihu",
            **fields}))

    def ours(record):
        return run_id in str(record)

    def orders(done):
        return run(read_until(kafka.bootstrap, "dispatch.orders", wanted=ours, done=done,
                              timeout=90))

    def feedback(order, status):
        run(produce(kafka.bootstrap, [("dispatch.feedback", order["order_id"].encode(), dumps({
            "order_id": order["order_id"], "status": status,
            "department": order["department"], "at": time.time(), "by": "duty desk"}))]))

    with worker_process(kafka.bootstrap, rules, f"chain-{run_id}",
                        tmp_path / "worker.log") as worker, \
            yujing_process(tmp_path / "dispatch.log", "dispatch", "run", "--bootstrap",
                           kafka.bootstrap, "--routes", str(routes), "--group-id",
                           f"dispatch-{run_id}", "--metrics-port", "0"), \
            yujing_process(tmp_path / "track.log", "track", "--bootstrap", kafka.bootstrap,
                           "--every", "1s", "--metrics-port", "0"):
        # the silence is in force once the worker has read control.silences to its end
        wait_for_log(tmp_path / "worker.log", "reference topics read to their end", worker)
        run(produce(kafka.bootstrap, [event(1, tank, level_pct=97.0),
                                      event(2, hot, temp_c=70.0),
                                      event(3, quiet, level_pct=99.0)]))

        # no acknowledgement within 3 s: the order of the red alert goes up to the city
        def escalated(got):
            mine = latest(got, "order_id").values()
            return any(o["key"] == tank and o["escalations"] >= 1 for o in mine) and \
                any(o["key"] == hot for o in mine)
        by_id = latest(orders(escalated), "order_id")
        level_order = next(o for o in by_id.values() if o["key"] == tank)
        noisy_order = next(o for o in by_id.values() if o["key"] == hot)
        assert level_order["level"] == "city" and level_order["state"] == "open"
        assert level_order["department"] == "emergency_management"
        assert level_model in level_order["model_ids"]
        assert not [o for o in by_id.values() if o["key"] == quiet]  # silenced: no order

        feedback(level_order, "acknowledged")
        feedback(level_order, "resolved")
        feedback(noisy_order, "false_alarm")
        run(produce(kafka.bootstrap, [event(4, tank, level_pct=80.0)]))

        def settled(got):
            mine = latest(got, "order_id")
            return mine.get(level_order["order_id"], {}).get("state") == "resolved" and \
                mine.get(noisy_order["order_id"], {}).get("state") == "false_alarm"
        final = latest(orders(settled), "order_id")
        level_final = final[level_order["order_id"]]
        assert level_final["acknowledged_at"] is not None
        assert level_final["escalations"] >= 1
        assert [h["what"] for h in level_final["history"]][:2] == ["created", "escalated"]

        def scored(got):
            cards = latest(got, "name")
            return cards.get(level_model, {}).get("resolved") == 1 and \
                cards.get(noisy_model, {}).get("false_alarms") == 1
        cards = latest(run(read_until(
            kafka.bootstrap, "performance.scorecards", wanted=ours, done=scored,
            timeout=90)), "name")

    alerts = run(read_until(kafka.bootstrap, "alerts", wanted=ours,
                            done=lambda got: len(got) >= 4, timeout=30))
    logs = "".join((tmp_path / f).read_text(errors="replace")[-2000:]
                   for f in ("worker.log", "dispatch.log", "track.log"))
    assert sorted((a["key"], a["state"], bool(a["silenced_by"])) for a in alerts) == sorted([
        (tank, "firing", False), (tank, "resolved", False), (hot, "firing", False),
        (quiet, "firing", True)]), logs

    level_card, noisy_card = cards[level_model], cards[noisy_model]
    assert (level_card["scope"], level_card["orders"], level_card["acknowledged"],
            level_card["resolved"], level_card["false_alarms"]) == ("model", 1, 1, 1, 0), logs
    assert level_card["sla_total"] == 1 and level_card["sla_met"] == 0  # acknowledged late
    assert level_card["false_alarm_rate"] == 0.0
    assert (noisy_card["orders"], noisy_card["false_alarms"],
            noisy_card["false_alarm_rate"]) == (1, 1, 1.0), logs
