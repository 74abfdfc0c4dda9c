"""Keeping reference data current from Kafka, and publishing it there (``engine.reference_records``
applies the records, from Kafka or from files and replayed envelopes).

Every worker needs every reference record (any vehicle may drive into any zone), so the worker
reads the compacted ``reference.*`` topics — and the waybill topic, whose latest record per
waybill gives a vehicle's planned route — whole, from the beginning, with a consumer outside the
group, and keeps them in the ``ReferenceData`` its models consult.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from engine.failures import describe
from engine.kafka_client.connection import client_options
from engine.reference_records import apply_reference, track_lookup_event
from engine.silences import SilenceBook
from models.refdata import ReferenceData
from topics.codec import Event, decode
from topics.reference import LOOKUP_EVENT_TOPICS, REFERENCE_SCHEMAS
from topics.registry import ALL_TOPICS, SILENCES

log = logging.getLogger("yujing.reference")


class ReferenceReader:
    """Reads every reference topic whole and keeps ``reference`` current (a worker task)."""

    def __init__(self, bootstrap: str, reference: ReferenceData,
                 silences: SilenceBook | None = None) -> None:
        self.bootstrap = bootstrap
        self.reference = reference
        self.silences = silences
        """Also kept current from ``control.silences`` when given."""
        self.topics = [*REFERENCE_SCHEMAS, *LOOKUP_EVENT_TOPICS,
                       *([SILENCES.name] if silences is not None else [])]
        self.records = 0
        self.caught_up = False
        """True once every reference topic has been read to the end it had at the start."""

    async def run(self) -> None:
        """Read for ever; a failure is logged and the reading starts over after a pause."""
        while True:
            try:
                await self._read()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the worker alive: reference data is not worth a crash
                log.exception("reading reference topics failed; retrying in 5 s")
                await asyncio.sleep(5)

    async def _read(self) -> None:
        # No group: each worker reads all partitions itself, from the start. Partition counts
        # come from the topic registry, which is what created the topics.
        partitions = [TopicPartition(topic, p) for topic in self.topics
                      for p in range(ALL_TOPICS[topic].partitions)]
        consumer = AIOKafkaConsumer(**client_options(self.bootstrap), group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
                for messages in batches.values():
                    for message in messages:
                        try:
                            self._apply(message.topic, message.key, message.value)
                        except Exception as exc:  # one bad record, not the whole topic again
                            log.error("reference record %s[%d]@%d not applied: %s",
                                      message.topic, message.partition, message.offset,
                                      describe(exc))
                if not self.caught_up and not [tp for tp, end in ends.items()
                                               if await consumer.position(tp) < end]:
                    self.caught_up = True
                    # Operators (and tests) wait for this before relying on reference data
                    # and silences being in force.
                    log.info("reference topics read to their end: %d records", self.records)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()

    def _apply(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.records += 1
        if topic == SILENCES.name and self.silences is not None:
            self.silences.apply_record(key, value)
            return
        if key is None:
            log.warning("reference record without a key on %s: ignored", topic)
            return
        name = key.decode("utf-8", errors="replace")
        if topic in LOOKUP_EVENT_TOPICS:
            decoded = decode(topic, value or b"", key=key)
            if isinstance(decoded, Event):
                track_lookup_event(self.reference, decoded)
            return
        problem = apply_reference(self.reference, topic, name, value)
        if problem:
            log.warning("%s", problem)


async def publish_reference(bootstrap: str, reference: ReferenceData) -> int:
    """Send every record of the reference tables to their topics; return how many."""
    producer = AIOKafkaProducer(**client_options(bootstrap), linger_ms=10, acks="all",
                                enable_idempotence=True)
    await producer.start()
    sent = 0
    try:
        for table in reference.tables():
            if table not in REFERENCE_SCHEMAS:
                continue
            for key, record in reference.items(table):
                await producer.send(table, orjson.dumps(record), key=key.encode())
                sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent
