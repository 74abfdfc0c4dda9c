"""The console's Kafka side: read the topics it shows into its ``Feed`` and hand each change to
the pages listening; write what its users do (feedback, silences) as department systems and
``yujing silence`` write them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from engine.console.feed import CONSOLE_TOPICS, Change, Feed
from engine.kafka_client.connection import client_options
from engine.kafka_client.probe import BrokerProbe
from engine.kafka_client.whole_topics import (
    TopicRecord,
    assign_whole,
    catch_up,
    partitions_of,
    whole_topic_consumer,
)
from topics.records import Feedback, Silence
from topics.registry import FEEDBACK, SILENCES

log = logging.getLogger("yujing.console")
audit = logging.getLogger("yujing.console.audit")
CATCH_UP_TIMEOUT_S = 600.0
"""Reading the topics to their end at start; past it the reader starts again from where the
feed got to (a timeout is taken like a lost broker)."""
LISTENER_QUEUE = 10_000
"""Changes a page's stream may be behind before it is cut off (it reconnects and resumes)."""


@dataclass
class ConsoleService:
    bootstrap: str
    feed: Feed = field(default_factory=Feed)
    caught_up: bool = False
    listeners: set[asyncio.Queue[Change | None]] = field(default_factory=set)
    _producer: AIOKafkaProducer | None = None
    _probe: BrokerProbe | None = None

    def __post_init__(self) -> None:
        self._probe = BrokerProbe(self.bootstrap)

    @property
    def live(self) -> bool:
        """The feed is current: read to the end once, and the broker answers."""
        return self.caught_up and self._probe is not None and self._probe.not_ready() is None

    def listen(self) -> asyncio.Queue[Change | None]:
        queue: asyncio.Queue[Change | None] = asyncio.Queue(LISTENER_QUEUE)
        self.listeners.add(queue)
        return queue

    def stop_listening(self, queue: asyncio.Queue[Change | None]) -> None:
        self.listeners.discard(queue)

    def _take_record(self, record: TopicRecord) -> None:
        self._take(record.topic, record.partition, record.offset, record.key, record.value)

    def _take(self, topic: str, partition: int, offset: int, key: bytes | None,
              value: bytes | None) -> None:
        change = self.feed.add(topic, partition, offset, key, value)
        if change is None:
            return
        for queue in list(self.listeners):
            try:
                queue.put_nowait(change)
            except asyncio.QueueFull:  # a page that does not read: cut it off, it resumes
                self.listeners.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)

    async def run(self) -> None:
        """Read the topics for ever (from their start), then keep the producer for actions."""
        assert self._probe is not None
        probing = asyncio.create_task(self._probe.run())
        failed = False
        try:
            while True:
                try:
                    await self._read()
                except (KafkaError, OSError, TimeoutError) as exc:
                    # Said once an outage (the page shows "stale" meanwhile), not every 2 s.
                    (log.warning if self.caught_up or not failed else log.debug)(
                        "reading the console's topics stopped (%s); trying again every 2 s", exc)
                    failed, self.caught_up = True, False
                    await asyncio.sleep(2)
        finally:
            probing.cancel()

    async def _read(self) -> None:
        consumer = whole_topic_consumer(self.bootstrap)
        try:
            await consumer.start()
            partitions = await partitions_of(self.bootstrap, CONSOLE_TOPICS)
            await assign_whole(consumer, partitions)
            for tp in partitions:  # go on after what the feed already took
                taken = self.feed.positions.get((tp.topic, tp.partition))
                if taken is not None:
                    consumer.seek(tp, taken + 1)
            began = time.monotonic()
            count = await catch_up(consumer, partitions, self._take_record, CATCH_UP_TIMEOUT_S)
            self.caught_up = True
            log.info("console: %d records read to the end of %d partitions in %.1f s; live",
                     count, len(partitions), time.monotonic() - began)
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=5000)
                for messages in batches.values():
                    for m in messages:
                        self._take(m.topic, m.partition, m.offset, m.key, m.value)
        finally:
            await consumer.stop()

    async def _send(self, topic: str, key: str, value: bytes) -> None:
        if self._producer is None:
            producer = AIOKafkaProducer(**client_options(self.bootstrap), acks="all",
                                        enable_idempotence=True, linger_ms=5)
            await producer.start()
            self._producer = producer
        await self._producer.send_and_wait(topic, value, key=key.encode())

    async def send_feedback(self, feedback: Feedback) -> None:
        await self._send(FEEDBACK.name, feedback.order_id, feedback.model_dump_json().encode())
        audit.info("feedback %s on order %s by %s%s", feedback.status, feedback.order_id,
                   feedback.by, f": {feedback.note}" if feedback.note else "")

    async def send_silence(self, silence: Silence, what: str) -> None:
        await self._send(SILENCES.name, silence.silence_id, silence.model_dump_json().encode())
        audit.info("silence %s %s by %s (%s)", silence.silence_id, what, silence.created_by,
                   silence.reason)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
