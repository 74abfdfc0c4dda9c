"""The tracking service's own logic without a broker: taking records, publishing, gauges."""

from __future__ import annotations

import asyncio

from engine import metrics
from engine.kafka_client.whole_topics import TopicRecord
from engine.tracking.service import GaugeBoard, Tracker, TrackSettings
from tests.unit.tracking.recordkit import T0, alert, feedback, order
from topics.records import Scorecard


class RecordingProducer:
    """Stands in for AIOKafkaProducer: keeps what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []

    async def send(self, topic: str, value: bytes | None, key: bytes) -> asyncio.Future[None]:
        self.sent.append((topic, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def take(tracker: Tracker, topic: str, record) -> None:
    value = record if isinstance(record, bytes) else record.model_dump_json().encode()
    tracker.take(TopicRecord(topic, b"k", value))


def sample(metric: str, **labels: str) -> float | None:
    return metrics.sample_value(metric, labels)


async def test_publish_sends_cards_keyed_by_scope_and_name_and_tombstones_dropped_ones():
    tracker = Tracker(TrackSettings(bootstrap="unused", window_s=3600))
    take(tracker, "dispatch.orders", order("O1", models=("svc.m1",), department="svc-fire",
                                            ack=60))
    take(tracker, "alerts", alert("A1", model_id="svc.m2", departments=["svc-fire"], at=100))
    producer = RecordingProducer()
    cards = await tracker.publish(producer, now=T0 + 600)  # type: ignore[arg-type]
    assert [(t, k) for t, k, _ in producer.sent] == [
        ("performance.scorecards", b"department:svc-fire"),
        ("performance.scorecards", b"model:svc.m1"), ("performance.scorecards", b"model:svc.m2"),
        ("performance.scorecards", b"level:district")]
    assert Scorecard.model_validate_json(producer.sent[1][2] or b"") == cards[1]

    # An hour later the alert has left the window; the open order is still backlog.
    producer.sent.clear()
    await tracker.publish(producer, now=T0 + 3700)  # type: ignore[arg-type]
    assert [(k, v is None) for _, k, v in producer.sent] == [
        (b"department:svc-fire", False), (b"model:svc.m1", False), (b"level:district", False),
        (b"model:svc.m2", True)]
    assert tracker.records.alerts == {}


def test_malformed_records_are_skipped_and_counted():
    tracker = Tracker(TrackSettings(bootstrap="unused"))
    before = sample("yujing_tracking_records_skipped_total", topic="dispatch.feedback") or 0.0
    take(tracker, "dispatch.feedback", b"[1, 2]")
    take(tracker, "dispatch.feedback", feedback("O1", "acknowledged", at=10))
    assert sample("yujing_tracking_records_skipped_total",
                  topic="dispatch.feedback") == before + 1
    assert len(tracker.records.feedback) == 1


def test_gauges_show_the_latest_cards_and_drop_names_that_are_gone():
    board = GaugeBoard()
    noisy = Scorecard(scope="model", name="gauge.noisy", period_start=0, period_end=1,
                      orders=3, false_alarms=1, resolved=1, closed=2, false_alarm_rate=0.5,
                      ack_p90_s=600.0)
    fire = Scorecard(scope="department", name="gauge-fire", period_start=0, period_end=1,
                     open_backlog=2, sla_compliance=0.75)
    board.show([noisy, fire])
    assert sample("yujing_false_alarm_rate", model="gauge.noisy") == 0.5
    assert sample("yujing_window_orders_closed", scope="model", name="gauge.noisy") == 2.0
    assert sample("yujing_ack_seconds", scope="model", name="gauge.noisy",
                  quantile="0.9") == 600.0
    assert sample("yujing_ack_seconds", scope="model", name="gauge.noisy",
                  quantile="0.5") is None  # no figure, no sample
    assert sample("yujing_open_orders", department="gauge-fire") == 2.0
    assert sample("yujing_sla_compliance", scope="department", name="gauge-fire") == 0.75

    board.show([fire.model_copy(update={"open_backlog": 0})])
    assert sample("yujing_false_alarm_rate", model="gauge.noisy") is None
    assert sample("yujing_window_orders", scope="model", name="gauge.noisy") is None
    assert sample("yujing_window_orders_closed", scope="model", name="gauge.noisy") is None
    assert sample("yujing_open_orders", department="gauge-fire") == 0.0


def test_the_false_alarm_rate_gauge_names_its_denominator():
    from engine.tracking.service import FALSE_ALARM_RATE

    (rate,) = FALSE_ALARM_RATE.describe()
    assert "closed with a verdict" in rate.documentation
    assert "yujing_window_orders_closed" in rate.documentation
