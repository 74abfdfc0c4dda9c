"""The worker's own metrics, without a broker: series present from start-up, the event-time lag
never negative, and the event → alert latency measured at publication."""

import time
from datetime import UTC, datetime
from typing import Any, get_args

import orjson
import pytest
from faust.types import TP

from engine import metrics
from tests.rulekit import FACILITY
from tests.unit.worker.kit import counting_worker, message
from topics.records import DeadLetterClass
from topics.registry import EVENT_TOPICS


def record(offset: int, ts: float, tank_id: str = "T1") -> Any:
    return message(FACILITY, tank_id, {"event_id": f"e{offset}", "tank_id": tank_id,
                                       "ts": datetime.fromtimestamp(ts, UTC).isoformat(),
                                       "facility_id": "F1"}, offset)


@pytest.fixture
def worker(tmp_path):
    worker = counting_worker(tmp_path)
    sent: list[Any] = []
    worker.outputs.send = lambda *args, **kwargs: sent.append(args)  # no broker to send to
    worker.sent = sent  # type: ignore[attr-defined]
    return worker


def value(name: str, **labels: str) -> float | None:
    return metrics.sample_value(name, labels)


def test_counters_of_every_topic_and_reason_exist_from_start_up(worker):
    for topic in EVENT_TOPICS:
        assert value("yujing_events_consumed_total", topic=topic) is not None, topic
        for reason in get_args(DeadLetterClass):
            assert value("yujing_events_deadlettered_total", topic=topic,
                         reason=reason) is not None, (topic, reason)
    assert value("yujing_rule_reloads_total", result="rejected") is not None
    for family in ("yujing_events_late_total", "yujing_events_undecided_total"):
        assert value(family, model="test.tank.readings") is not None, family
    # A model's first alert counts in rate() only if its series was there before it.
    assert value("yujing_alerts_published_total", model="test.tank.readings",
                 severity="yellow", state="firing") is not None
    assert value("yujing_alerts_suppressed_total", model="test.tank.readings",
                 reason="silenced") is not None
    assert value("yujing_fetch_max_wait_seconds") == 1.5  # Faust's, until the worker paces
    assert value("yujing_alert_latency_seconds_count", since="receipt") is not None


def test_an_event_ahead_of_the_clock_reads_as_no_lag_not_a_negative_one(worker):
    ahead = value("yujing_events_ahead_of_clock_total", topic=FACILITY)
    worker.handle_intake([record(1, time.time() + 60)])
    assert value("yujing_event_time_lag_seconds", topic=FACILITY) == 0.0
    assert value("yujing_events_ahead_of_clock_total", topic=FACILITY) == ahead + 1
    worker.handle_intake([record(2, time.time() - 30, tank_id="T2")])
    assert 29 < value("yujing_event_time_lag_seconds", topic=FACILITY) < 60


def test_a_firing_alert_is_timed_from_its_event_and_from_the_batch_s_receipt(worker):
    def counts() -> tuple[float, float]:
        return (value("yujing_alert_latency_seconds_count", since="event_time") or 0.0,
                value("yujing_alert_latency_seconds_count", since="receipt") or 0.0)

    before = counts()
    evaluated = value("yujing_rule_evaluations_total", model="test.tank.readings")
    slow = value("yujing_alert_latency_seconds_bucket", since="event_time", le="60.0") or 0.0
    now = time.time()
    worker.handle_intake([record(1, now - 300), record(2, now - 200), record(3, now - 120)])
    assert [orjson.loads(args[2])["state"] for args in worker.sent] == ["firing"]
    assert counts() == (before[0] + 1, before[1] + 1)
    assert value("yujing_rule_evaluations_total", model="test.tank.readings") == evaluated + 3
    # 120 s after its event: above the 60 s bucket, counted there no more than before.
    assert value("yujing_alert_latency_seconds_bucket", since="event_time", le="60.0") == slow


def test_ready_only_with_partitions_assigned_and_the_reference_data_read(worker):
    assert worker.not_ready_here() == "no partitions assigned"
    tp = TP(FACILITY, 0)
    worker._assignment = frozenset((tp,))
    worker.app.consumer.assignment = lambda: {tp}
    assert worker.not_ready_here() == "reference data and silences not read to their end yet"
    worker.reference_reader.caught_up = True  # what its reading sets at the topics' ends
    assert worker.not_ready_here() is None
