"""``yujing track``: keep the scorecards current on ``performance.scorecards`` and on /metrics.

The service only moves records: it reads ``alerts``, ``dispatch.orders`` and
``dispatch.feedback`` whole (from the beginning at every start, so the topics are its state and
a restart loses nothing), keeps consuming, and every ``every_s`` computes the scorecards of the
last ``window_s`` with ``scores.scorecards`` and publishes them, keyed ``<scope>:<name>``.
A key that has dropped out of the window gets a tombstone, so the compacted topic holds only
current figures.

One small consumer with no group, because every scorecard needs the records of all partitions
together (a department's orders are spread over every partition), and the three topics carry one
record per alert change, order change or feedback: a single process reads them in seconds, where
a group would split records that must be counted together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, Field

from engine import metrics
from engine.kafka_client.admin import ensure_topics
from engine.kafka_client.connection import client_options
from engine.kafka_client.probe import BrokerProbe
from engine.kafka_client.whole_topics import (
    TopicRecord,
    assign_whole,
    catch_up,
    partitions_of,
    read_to_end,
    whole_topic_consumer,
)
from engine.tracking.scores import DEFAULT_SLA_SECONDS, scorecards
from engine.tracking.store import TRACKED_TOPICS, LifeRecords
from topics.records import Scorecard, Severity
from topics.registry import ALERTS, FEEDBACK, ORDERS, SCORECARDS

log = logging.getLogger("yujing.tracking")

SLA_COMPLIANCE = Gauge(
    "yujing_sla_compliance", "Share of work orders acknowledged within their severity's limit, "
    "over the tracking window", ["scope", "name"], registry=metrics.TRACKING)
ACK_SECONDS = Gauge(
    "yujing_ack_seconds", "Time from work order to first response (nearest-rank quantile), over "
    "the tracking window", ["scope", "name", "quantile"], registry=metrics.TRACKING)
RESOLVE_SECONDS = Gauge(
    "yujing_resolve_seconds", "Time from work order to resolution (nearest-rank quantile), over "
    "the tracking window", ["scope", "name", "quantile"], registry=metrics.TRACKING)
WINDOW_ORDERS = Gauge(
    "yujing_window_orders", "Work orders created in the tracking window", ["scope", "name"],
    registry=metrics.TRACKING)
WINDOW_ORDERS_CLOSED = Gauge(
    "yujing_window_orders_closed", "Work orders created in the tracking window and closed with "
    "a verdict (resolved or false alarm): what yujing_false_alarm_rate is over",
    ["scope", "name"], registry=metrics.TRACKING)
FALSE_ALARM_RATE = Gauge(
    "yujing_false_alarm_rate", "A model's false alarms over its work orders closed with a "
    "verdict (resolved or false alarm; their count is yujing_window_orders_closed), over the "
    "tracking window", ["model"], registry=metrics.TRACKING)
NOT_DISPATCHED = Gauge(
    "yujing_alerts_not_dispatched", "A model's alerts silenced or inhibited and never dispatched, "
    "over the tracking window", ["model"], registry=metrics.TRACKING)
OPEN_ORDERS = Gauge(
    "yujing_open_orders", "Work orders of a department without a verdict", ["department"],
    registry=metrics.TRACKING)
RECORDS_READ = Counter(
    "yujing_tracking_records_total", "Records tracking read", ["topic"], registry=metrics.TRACKING)
RECORDS_SKIPPED = Counter(
    "yujing_tracking_records_skipped_total", "Records tracking could not use (malformed)",
    ["topic"], registry=metrics.TRACKING)

_ALL_GAUGES = (SLA_COMPLIANCE, ACK_SECONDS, RESOLVE_SECONDS, WINDOW_ORDERS,
               WINDOW_ORDERS_CLOSED, FALSE_ALARM_RATE, NOT_DISPATCHED, OPEN_ORDERS)


class TrackSettings(BaseModel):
    bootstrap: str
    every_s: float = Field(60.0, gt=0)
    window_s: float = Field(86400.0, gt=0)
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    sla_seconds: dict[Severity, float] = Field(default_factory=lambda: dict(DEFAULT_SLA_SECONDS))


def scorecard_key(card: Scorecard) -> str:
    return f"{card.scope}:{card.name}"


class GaugeBoard:
    """Shows the latest scorecards in the gauges. Label sets no scorecard has any more are
    removed, not zeroed (a department with no orders today has no SLA figure); the others are
    overwritten in place, so a scrape never sees them missing."""

    def __init__(self) -> None:
        self.shown: dict[Gauge, set[tuple[str, ...]]] = {g: set() for g in _ALL_GAUGES}

    def show(self, cards: list[Scorecard]) -> None:
        values: dict[Gauge, dict[tuple[str, ...], float]] = {g: {} for g in _ALL_GAUGES}
        for card in cards:
            labels = (card.scope, card.name)
            values[WINDOW_ORDERS][labels] = card.orders
            values[WINDOW_ORDERS_CLOSED][labels] = card.closed
            if card.sla_compliance is not None:
                values[SLA_COMPLIANCE][labels] = card.sla_compliance
            for quantile, ack, resolve in (("0.5", card.ack_p50_s, card.resolve_p50_s),
                                           ("0.9", card.ack_p90_s, card.resolve_p90_s)):
                if ack is not None:
                    values[ACK_SECONDS][(*labels, quantile)] = ack
                if resolve is not None:
                    values[RESOLVE_SECONDS][(*labels, quantile)] = resolve
            if card.scope == "model":
                values[NOT_DISPATCHED][(card.name,)] = card.not_dispatched
                if card.false_alarm_rate is not None:
                    values[FALSE_ALARM_RATE][(card.name,)] = card.false_alarm_rate
            elif card.scope == "department":
                values[OPEN_ORDERS][(card.name,)] = card.open_backlog
        for gauge, figures in values.items():
            for labels, value in figures.items():
                gauge.labels(*labels).set(value)
            for gone in self.shown[gauge] - figures.keys():
                gauge.remove(*gone)
            self.shown[gauge] = set(figures)


class Tracker:
    """Holds what the topics say and turns it into scorecards on a schedule."""

    def __init__(self, settings: TrackSettings) -> None:
        self.settings = settings
        self.records = LifeRecords()
        self.published_keys: set[str] = set()
        self.gauges = GaugeBoard()

    def take(self, record: TopicRecord) -> None:
        RECORDS_READ.labels(record.topic).inc()
        problem = self.records.add(record.topic, record.key, record.value)
        if problem:
            RECORDS_SKIPPED.labels(record.topic).inc()
            key = record.key.decode("utf-8", errors="replace") if record.key else None
            log.warning("skipped a record (key %r): %s", key, problem)

    def scorecards(self, now: float) -> list[Scorecard]:
        start = now - self.settings.window_s
        # Older alerts can no longer count: let them go (orders and feedback stay whole; open
        # orders of any age are the backlog).
        self.records.forget_alerts_before(start)
        return scorecards(self.records.alerts.values(), self.records.orders.values(),
                          self.records.feedback, start, now, self.settings.sla_seconds)

    async def publish(self, producer: AIOKafkaProducer, now: float) -> list[Scorecard]:
        cards = self.scorecards(now)
        keys = {scorecard_key(card) for card in cards}
        sent = [await producer.send(SCORECARDS.name, card.model_dump_json().encode(),
                                    key=scorecard_key(card).encode()) for card in cards]
        sent += [await producer.send(SCORECARDS.name, None, key=key.encode())
                 for key in sorted(self.published_keys - keys)]
        await asyncio.gather(*sent)
        self.published_keys = keys
        self.gauges.show(cards)
        log.info("published %d scorecards (%d departments, %d models, %d levels)", len(cards),
                 sum(c.scope == "department" for c in cards),
                 sum(c.scope == "model" for c in cards),
                 sum(c.scope == "level" for c in cards))
        return cards

    async def run(self) -> None:
        """Read the topics whole, then publish every ``every_s`` for ever (until cancelled)."""
        settings = self.settings
        await ensure_topics(settings.bootstrap, [ALERTS, ORDERS, FEEDBACK, SCORECARDS])
        self.published_keys = await _current_keys(settings.bootstrap)
        consumer = whole_topic_consumer(settings.bootstrap)
        producer = AIOKafkaProducer(**client_options(settings.bootstrap), linger_ms=10,
                                    acks="all", enable_idempotence=True)
        try:
            await consumer.start()
            await producer.start()
            partitions = await partitions_of(settings.bootstrap, TRACKED_TOPICS)
            await assign_whole(consumer, partitions)
            self.records.alerts_after = time.time() - settings.window_s
            read = await catch_up(consumer, partitions, self.take, timeout=600)
            log.info("read %d records of %s; scorecards every %gs over the last %gs", read,
                     ", ".join(TRACKED_TOPICS), settings.every_s, settings.window_s)
            loop = asyncio.get_running_loop()
            next_publish = loop.time()
            while True:
                if loop.time() >= next_publish:
                    try:
                        await self.publish(producer, time.time())
                    except KafkaError as exc:  # the next round publishes current figures
                        log.warning("publishing scorecards failed: %r; retrying in %gs", exc,
                                    settings.every_s)
                    next_publish = loop.time() + settings.every_s
                wait = max(0.0, min(1.0, next_publish - loop.time()))
                batches = await consumer.getmany(timeout_ms=int(wait * 1000),
                                                 max_records=5000)
                for messages in batches.values():
                    for message in messages:
                        self.take(TopicRecord(message.topic, message.key, message.value))
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()  # sends what is buffered
            with contextlib.suppress(Exception):
                await consumer.stop()


async def _current_keys(bootstrap: str) -> set[str]:
    """The keys ``performance.scorecards`` holds figures for (so stale ones can be removed)."""
    latest: dict[str, bool] = {}
    for record in await read_to_end(bootstrap, [SCORECARDS.name]):
        if record.key is not None:
            latest[record.key.decode("utf-8", errors="replace")] = bool(record.value)
    return {key for key, present in latest.items() if present}


def run_tracker(settings: TrackSettings) -> None:
    """Run ``yujing track`` in this process until SIGTERM or Ctrl-C."""
    probe = BrokerProbe(settings.bootstrap)
    metrics.serve(settings.metrics_port, probe.not_ready, metrics.TRACKING,
                  host=settings.metrics_host)

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        probing = asyncio.create_task(probe.run())
        with contextlib.suppress(asyncio.CancelledError):
            await Tracker(settings).run()
        probing.cancel()
        log.info("stopped")

    asyncio.run(main())

