"""The dispatch service: moves records between Kafka and the dispatcher core, decides nothing.

Built on aiokafka, not Faust: it is one small consumer group over two topics, with no per-key
tables to keep — its state is its own compacted output, read back whole at start.

1. Create the topics it uses (``engine.kafka_client.admin.ensure_topics``).
2. Read ``dispatch.orders`` and ``incidents`` to their end (every partition, no group) and
   ``restore`` the core from the latest record of each: open orders get their escalation timers
   back.
3. Consume ``alerts`` and ``dispatch.feedback`` in a consumer group. For each batch: decode,
   apply, publish the changed orders (keyed by ``order_id``) and incidents (``incident_id``),
   wait until the broker has them all, then commit the offsets — at least once: a crash before
   the commit replays the batch, and the core drops what it already applied.
4. ``advance(time.time())`` every second, so orders escalate with no input at all.

A record that is not a valid alert or feedback — or feedback that cannot apply, say about an
unknown order — goes to ``events.deadletter`` with the reason, and the next record is taken.
SIGTERM (or Ctrl-C) finishes the batch in hand, commits it and stops.

Run one dispatcher per consumer group: grouping needs every alert of a place, and two
dispatchers holding the same orders would both escalate them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_args

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, ValidationError

from engine import metrics
from engine.dispatch.core import Dispatcher, FeedbackRefused, Outputs
from engine.dispatch.routing import Routing
from engine.kafka_client.admin import ensure_topics
from engine.kafka_client.connection import client_options
from engine.kafka_client.probe import BrokerProbe
from topics.codec import dead_letter
from topics.departments import DEPARTMENTS
from topics.records import (
    Alert,
    DeadLetter,
    DeadLetterClass,
    Feedback,
    FeedbackStatus,
    Incident,
    OrderLevel,
    Severity,
    WorkOrder,
)
from topics.registry import ALERTS, DEADLETTER, FEEDBACK, INCIDENTS, ORDERS, TopicSpec

log = logging.getLogger("yujing.dispatch")

ORDERS_CREATED = Counter(
    "yujing_dispatch_orders_created_total", "Work orders created", ["department", "severity"],
    registry=metrics.DISPATCH)
ESCALATIONS = Counter(
    "yujing_dispatch_escalations_total", "Work orders escalated for want of acknowledgement",
    ["department", "severity"], registry=metrics.DISPATCH)
FEEDBACK_APPLIED = Counter(
    "yujing_dispatch_feedback_total", "Department feedback applied to work orders", ["status"],
    registry=metrics.DISPATCH)
RECORDS_CONSUMED = Counter(
    "yujing_dispatch_records_consumed_total", "Alert and feedback records read", ["topic"],
    registry=metrics.DISPATCH)
OPEN_ORDERS = Gauge(
    "yujing_dispatch_open_orders", "Work orders no department has closed yet, by command level "
    "(town, district or city: where it started, or climbed to)", ["level"],
    registry=metrics.DISPATCH)
OPEN_INCIDENTS = Gauge("yujing_dispatch_open_incidents", "Incidents still open",
    registry=metrics.DISPATCH)

TICK_SECONDS = 1.0
"""How often the clock is advanced: escalations are at most this late."""


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    bootstrap: str
    routing: Routing
    group_id: str = "yujing-dispatch"
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"


@dataclass(slots=True)
class _Batch:
    """What one turn of the loop publishes: the latest state of each record, dead letters."""

    orders: dict[str, WorkOrder] = field(default_factory=dict)
    incidents: dict[str, Incident] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def add(self, outputs: Outputs) -> None:
        for order in outputs.orders:
            self.orders[order.order_id] = order
        for incident in outputs.incidents:
            self.incidents[incident.incident_id] = incident
        for happening in outputs.happened:
            if happening.what == "created":
                ORDERS_CREATED.labels(happening.department, happening.severity).inc()
                log.info("order %s created for %s (%s)", happening.order_id,
                         happening.department, happening.severity)
            elif happening.what == "escalated":
                ESCALATIONS.labels(happening.department, happening.severity).inc()
                log.info("order %s of %s escalated (%s level)", happening.order_id,
                         happening.department, happening.level)
            else:
                FEEDBACK_APPLIED.labels(happening.what).inc()


Record = TypeVar("Record", bound=BaseModel)


def decode_record(spec: TopicSpec, schema: type[Record], message: ConsumerRecord[Any, Any]
                  ) -> Record | DeadLetter:
    """One Kafka record as ``schema``, or a dead letter saying why it is not one."""

    def dead(reason: str, reason_class: DeadLetterClass = "schema") -> DeadLetter:
        return dead_letter(spec.name, message.value or b"", reason, key=message.key,
                           partition=message.partition, offset=message.offset,
                           reason_class=reason_class)

    if message.value is None:
        return dead("no value (a tombstone)", "not_object")
    try:
        raw = orjson.loads(message.value)
    except orjson.JSONDecodeError as exc:
        return dead(f"not JSON: {exc}", "not_json")
    if not isinstance(raw, dict):
        return dead(f"not a JSON object but {type(raw).__name__}", "not_object")
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(record)'}: {e['msg']}"
                             for e in exc.errors(include_url=False))
        return dead(f"does not match the {spec.name} schema: {problems}")


def series_from_start() -> None:
    """Dispatch's labelled counters at 0 for every department, severity and feedback status
    (20 × 4 × 2 + 4 series), so rates and rules over them have a series before the first order."""
    for department in DEPARTMENTS:
        for severity in Severity:
            ORDERS_CREATED.labels(department, severity.value)
            ESCALATIONS.labels(department, severity.value)
    for status in get_args(FeedbackStatus):
        FEEDBACK_APPLIED.labels(status)
    for level in get_args(OrderLevel):
        OPEN_ORDERS.labels(level)


class DispatchService:
    def __init__(self, settings: DispatchSettings) -> None:
        self.settings = settings
        self.dispatcher = Dispatcher(settings.routing)
        series_from_start()

    async def run(self, stop: asyncio.Event) -> None:
        bootstrap = self.settings.bootstrap
        await ensure_topics(bootstrap, [ALERTS, FEEDBACK, ORDERS, INCIDENTS, DEADLETTER])
        orders, incidents = await read_state(bootstrap)
        self.dispatcher.restore(orders, incidents)
        log.info("restored %d work orders (%d awaiting acknowledgement) and %d incidents",
                 len(orders), sum(o.state == "open" for o in orders), len(incidents))
        producer = AIOKafkaProducer(**client_options(bootstrap), linger_ms=10, acks="all",
                                    enable_idempotence=True)
        consumer = AIOKafkaConsumer(ALERTS.name, FEEDBACK.name, **client_options(bootstrap),
                                    group_id=self.settings.group_id, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await producer.start()
        try:
            await consumer.start()
            log.info("dispatching: consuming %s and %s as group %s", ALERTS.name,
                     FEEDBACK.name, self.settings.group_id)
            await self._loop(consumer, producer, stop)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
            await producer.stop()

    async def _loop(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                    stop: asyncio.Event) -> None:
        next_tick = 0.0
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=250, max_records=500)
            batch = _Batch()
            for messages in fetched.values():
                for message in messages:
                    self._take(message, batch)
            now = time.time()
            if now >= next_tick:
                batch.add(self.dispatcher.advance(now))
                next_tick = now + TICK_SECONDS
            await _publish(producer, batch)
            if fetched:
                try:
                    await consumer.commit()
                except CommitFailedError as exc:
                    # Partitions moved to another member: it replays the batch, and the
                    # records it has from us make that harmless.
                    log.warning("offsets not committed: %s", exc)
            for level, count in self.dispatcher.unfinished_by_level().items():
                OPEN_ORDERS.labels(level).set(count)
            OPEN_INCIDENTS.set(self.dispatcher.open_incidents)

    def _take(self, message: ConsumerRecord[Any, Any], batch: _Batch) -> None:
        RECORDS_CONSUMED.labels(message.topic).inc()
        now = time.time()
        if message.topic == ALERTS.name:
            alert = decode_record(ALERTS, Alert, message)
            if isinstance(alert, DeadLetter):
                batch.dead_letters.append(alert)
            else:
                batch.add(self.dispatcher.on_alert(alert, now))
            return
        feedback = decode_record(FEEDBACK, Feedback, message)
        if isinstance(feedback, DeadLetter):
            batch.dead_letters.append(feedback)
            return
        try:
            batch.add(self.dispatcher.on_feedback(feedback, now))
        except FeedbackRefused as refused:
            batch.dead_letters.append(dead_letter(
                FEEDBACK.name, message.value, str(refused), key=message.key,
                partition=message.partition, offset=message.offset))


async def _publish(producer: AIOKafkaProducer, batch: _Batch) -> None:
    """Send everything and wait until the broker has it (before offsets are committed)."""
    sent = []
    for incident in batch.incidents.values():
        sent.append(await producer.send(INCIDENTS.name, incident.model_dump_json().encode(),
                                        key=incident.incident_id.encode()))
    for order in batch.orders.values():
        sent.append(await producer.send(ORDERS.name, order.model_dump_json().encode(),
                                        key=order.order_id.encode()))
    for letter in batch.dead_letters:
        metrics.EVENTS_DEADLETTERED.labels(letter.source_topic, letter.reason_class).inc()
        log.warning("dead letter from %s offset %s: %s", letter.source_topic, letter.offset,
                    letter.reason)
        sent.append(await producer.send(DEADLETTER.name, letter.model_dump_json().encode(),
                                        key=letter.source_topic.encode()))
    if sent:
        await asyncio.gather(*sent)


async def read_state(bootstrap: str) -> tuple[list[WorkOrder], list[Incident]]:
    """The latest record of every work order and incident, read to the end of the compacted
    topics (every partition, outside any group)."""
    partitions = [TopicPartition(spec.name, p) for spec in (ORDERS, INCIDENTS)
                  for p in range(spec.partitions)]
    consumer = AIOKafkaConsumer(**client_options(bootstrap), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    latest: dict[tuple[str, bytes], bytes | None] = {}
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, messages in fetched.items():
                for message in messages:
                    if message.key is not None:
                        latest[(tp.topic, message.key)] = message.value
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    orders: list[WorkOrder] = []
    incidents: list[Incident] = []
    for (topic, key), value in latest.items():
        if value is None:
            continue  # a tombstone: the record was deleted
        try:
            if topic == ORDERS.name:
                orders.append(WorkOrder.model_validate_json(value))
            else:
                incidents.append(Incident.model_validate_json(value))
        except ValidationError as exc:
            log.warning("unreadable %s record %r left out of the restore: %s", topic, key, exc)
    return orders, incidents


async def run_dispatch(settings: DispatchSettings) -> None:
    """Run the service until SIGTERM or Ctrl-C."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    probe = BrokerProbe(settings.bootstrap)
    metrics.serve(settings.metrics_port, probe.not_ready, metrics.DISPATCH,
                  host=settings.metrics_host)
    probing = asyncio.create_task(probe.run())
    try:
        await DispatchService(settings).run(stop)
    finally:
        probing.cancel()
    log.info("dispatch stopped")
