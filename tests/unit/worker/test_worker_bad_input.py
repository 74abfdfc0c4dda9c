"""The worker with bad input, without a broker: every event comes out scored, dead-lettered with
a reason, or counted; no record it hands to Kafka is one Kafka would refuse.

The Faust app is built but never started; what the worker sends is caught at ``send_soon``."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from engine import metrics
from engine.worker import NoRulesError, Worker, WorkerSettings
from engine.worker.in_flight import InFlight, Record
from tests.rulekit import FACILITY, rule_text
from tests.unit.test_failure_confinement import Faulty
from tests.unit.worker.kit import message
from topics.bounds import MAX_RECORD_BYTES, fits

TICKET = "events.hotline.ticket"


def reading(offset: int, temp_c: float, ts: float | str | None = None, tank: str = "T1") -> Any:
    return message(FACILITY, tank, {"event_id": f"e{offset}", "ts": time.time() if ts is None
                                    else ts, "tank_id": tank, "facility_id": "F1",
                                    "temp_c": temp_c}, offset)


@pytest.fixture
def worker(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hot.yaml").write_text(rule_text(
        id="test.tank.hot", source=FACILITY, kind="threshold", condition="temp_c > 60",
        summary="{tank_id} at {temp_c}"), encoding="utf-8")
    (rules / "gas.yaml").write_text(rule_text(
        id="test.ticket.gas", source=TICKET, kind="text", keywords=["燃气"],
        summary="{ticket_id}: {text}"), encoding="utf-8")
    worker = Worker(WorkerSettings(rules=[rules], data_dir=tmp_path / "data",
                                   reload_interval_s=0))
    sent: list[tuple[str, bytes, bytes]] = []

    def catch(channel: Any) -> Any:
        def send_soon(key: bytes, value: bytes, partition: int | None = None) -> Any:
            assert fits(key, value), "a record Kafka would refuse was handed to Faust"
            sent.append((channel.get_topic_name(), key, value))
            future = asyncio.Future(loop=asyncio.new_event_loop())
            future.set_result(None)
            return future
        return send_soon

    for channel in (worker.alerts, worker.deadletters, worker.repartition):
        channel.send_soon = catch(channel)  # type: ignore[method-assign]
    worker.sent = sent  # type: ignore[attr-defined]
    return worker


def records(worker: Any, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(value) for name, _, value in worker.sent if name == topic]


def test_a_rule_failing_on_an_event_dead_letters_it_with_the_rule_and_scores_the_rest(worker):
    by_id = {r.id: r for r in worker.core.rules.values()}
    hot = by_id["test.tank.hot"]
    broken = dataclasses.replace(hot, model=Faulty(hot.model, score=_raise_on_13))
    worker.core.set_rules([broken, by_id["test.ticket.gas"]])
    worker.handle_intake([reading(7, 70, tank="T1"), reading(8, 13, tank="T2"),
                          reading(9, 80, tank="T3")])
    assert sorted(a["key"] for a in records(worker, "alerts")) == ["T1", "T3"]
    (letter,) = records(worker, "events.deadletter")
    assert (letter["source_topic"], letter["partition"], letter["offset"]) == (FACILITY, 0, 8)
    assert (letter["reason_class"], letter["rule_id"]) == ("scoring", "test.tank.hot")
    assert "ZeroDivisionError: a defect" in letter["reason"]
    assert orjson.loads(letter["value"])["temp_c"] == 13


def _raise_on_13(event: Any) -> None:
    if event.data.get("temp_c") == 13:
        raise ZeroDivisionError("a defect in the model")


def test_events_lacking_the_conditions_field_count_in_the_undecided_metric(worker):
    def undecided() -> float:
        return metrics.sample_value("yujing_events_undecided_total",
                                         {"model": "test.tank.hot"}) or 0.0

    before = undecided()
    level_only = {"event_id": "L", "ts": time.time(), "tank_id": "T1", "facility_id": "F1",
                  "level_pct": 50.0}
    worker.handle_intake([message(FACILITY, "T1", level_only, 1), reading(2, 70)])
    assert undecided() == before + 1
    worker.handle_intake([message(FACILITY, "T1", level_only | {"event_id": "M"}, 3),
                          message(FACILITY, "T1", level_only | {"event_id": "N"}, 4)])
    assert undecided() == before + 3  # each batch adds what it counted, once
    assert [a["state"] for a in records(worker, "alerts")] == ["firing"]  # still firing


def test_a_huge_ticket_is_cut_scored_and_its_alert_fits(worker):
    text = "闻到燃气味，" + "啊" * 614_000
    worker.handle_intake([message(TICKET, "K1", {
        "event_id": "e1", "ts": time.time(), "ticket_id": "K1", "category": "gas",
        "status": "new", "text": text}, 1)])
    (alert,) = records(worker, "alerts")
    assert alert["model_id"] == "test.ticket.gas" and alert["state"] == "firing"
    size = len(orjson.dumps(alert))
    assert size < 32_000, size
    assert alert["summary"].startswith("K1: 闻到燃气味") and "[cut: " in alert["summary"]


def test_control_bytes_make_a_dead_letter_that_fits(worker):
    worker.handle_intake([message(FACILITY, "T1", b"\x01" * 950_000, 3),
                          reading(4, 70)])
    (letter,) = records(worker, "events.deadletter")
    assert letter["truncated"] and letter["size"] == 950_000
    assert letter["reason_class"] == "not_json"
    assert len(records(worker, "alerts")) == 1  # and the next event is scored


def test_an_output_kafka_would_refuse_is_dead_lettered_in_a_form_that_fits(worker):
    worker.outputs.send(worker.alerts, b"A1", b"x" * (MAX_RECORD_BYTES + 10), "the firing alert A1")
    (letter,) = records(worker, "events.deadletter")
    assert (letter["source_topic"], letter["reason_class"]) == ("alerts", "oversized")
    assert letter["size"] == MAX_RECORD_BYTES + 10 and letter["truncated"]
    assert "the firing alert A1 is 1000012 bytes" in letter["reason"]
    assert records(worker, "alerts") == []


@pytest.mark.parametrize("ts", ["2100-01-01T00:00:00Z", 0, "2024-06-03T08:00:00+08:00"])
def test_events_outside_the_time_bounds_are_dead_lettered_not_scored(worker, ts):
    worker.handle_intake([reading(5, 99, ts=ts)])
    assert records(worker, "alerts") == []
    (letter,) = records(worker, "events.deadletter")
    assert letter["reason_class"] == "event_time"
    # the key is not poisoned: a real reading after it alerts
    worker.handle_intake([reading(6, 99)])
    assert len(records(worker, "alerts")) == 1


def test_a_worker_without_a_valid_rule_refuses_to_start(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "broken.yaml").write_text("id: test.broken\nkind: nothing\n", encoding="utf-8")
    with pytest.raises(NoRulesError, match=r"no valid rule file .* \(1 problems\)"):
        Worker(WorkerSettings(rules=[rules], data_dir=tmp_path / "data"))


async def test_a_record_the_broker_refuses_is_handed_back_and_a_lost_broker_raises():
    refused: list[Any] = []
    in_flight = InFlight(on_refused=lambda record, exc: refused.append((record, exc)))
    ok, too_big = asyncio.Future(), asyncio.Future()
    ok.set_result(None)
    too_big.set_exception(MessageSizeTooLargeError())
    record = Record("alerts", b"A1", b"{}")
    in_flight.add(ok)
    in_flight.add(too_big, record)
    assert await in_flight.delivered(1.0)
    assert [(r, type(e)) for r, e in refused] == [(record, MessageSizeTooLargeError)]
    lost = asyncio.Future()
    lost.set_exception(KafkaTimeoutError())
    in_flight.add(lost, record)
    with pytest.raises(KafkaTimeoutError):
        await in_flight.delivered(1.0)


def test_a_defect_outside_the_rules_dead_letters_the_batch_instead_of_losing_it(worker):
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a defect in the worker")

    worker.core.process = broken  # type: ignore[method-assign]
    worker.guarded(worker.handle_intake, [reading(1, 70), reading(2, 80, tank="T2")])
    letters = records(worker, "events.deadletter")
    assert [(x["offset"], x["reason_class"]) for x in letters] == [(1, "scoring"),
                                                                    (2, "scoring")]
    assert "its batch could not be scored: RuntimeError: a defect in the worker" in \
        letters[0]["reason"]
