"""Reading whole topics: every partition, from the beginning, with no consumer group.

Tracking, the alert history and silences need everything a topic holds (any department's orders,
any alert's records), so each reader assigns itself every partition rather than sharing them in
a group, and starts from the beginning: the topics are the state, and a restarted reader loses
nothing. "To the end" means to the end offsets read when the reading started.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from engine.kafka_client.connection import client_options


@dataclass(frozen=True, slots=True)
class TopicRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int = -1
    offset: int = -1
    """Where it was read (-1: not from Kafka)."""


def whole_topic_consumer(bootstrap: str) -> AIOKafkaConsumer:
    """A consumer outside any group that commits nothing (``assign_whole`` it after start)."""
    return AIOKafkaConsumer(**client_options(bootstrap), group_id=None,
                            enable_auto_commit=False, auto_offset_reset="earliest")


async def partitions_of(bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of those of ``topics`` the broker has (a missing topic has none).

    It asks for the metadata of all topics: asking about a named topic can create it on a
    broker that auto-creates topics, with the wrong partition count.
    """
    admin = AIOKafkaAdminClient(**client_options(bootstrap), request_timeout_ms=30000)
    await admin.start()
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    found = {t["topic"]: sorted(p["partition"] for p in t["partitions"])
             for t in described if t["error_code"] == 0}
    return [TopicPartition(topic, p) for topic in topics for p in found.get(topic, [])]


async def assign_whole(consumer: AIOKafkaConsumer, partitions: list[TopicPartition],
                       from_end: bool = False) -> None:
    """Assign ``partitions`` and seek to their beginning (or end)."""
    consumer.assign(partitions)
    if not partitions:
        return
    if from_end:
        await consumer.seek_to_end(*partitions)
    else:
        await consumer.seek_to_beginning(*partitions)


async def catch_up(consumer: AIOKafkaConsumer, partitions: list[TopicPartition],
                   take: Callable[[TopicRecord], None], timeout: float = 120.0) -> int:
    """Hand every record up to the partitions' current end offsets to ``take``; return how
    many. TimeoutError when the end is not reached within ``timeout`` seconds."""
    if not partitions:
        return 0
    ends = await consumer.end_offsets(partitions)
    deadline = time.monotonic() + timeout
    count = 0
    while True:
        behind = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
        if not behind:
            return count
        if time.monotonic() > deadline:
            raise TimeoutError(f"not at the end of {', '.join(map(str, behind))} after "
                               f"{timeout:.0f}s")
        batches = await consumer.getmany(*behind, timeout_ms=500, max_records=5000)
        for messages in batches.values():
            for message in messages:
                take(TopicRecord(message.topic, message.key, message.value,
                                 message.partition, message.offset))
                count += 1


async def read_to_end(bootstrap: str, topics: Iterable[str], timeout: float = 120.0
                      ) -> list[TopicRecord]:
    """Every record ``topics`` hold now, each partition in order."""
    consumer = whole_topic_consumer(bootstrap)
    try:
        await consumer.start()
        partitions = await partitions_of(bootstrap, topics)
        await assign_whole(consumer, partitions)
        records: list[TopicRecord] = []
        await catch_up(consumer, partitions, records.append, timeout)
        return records
    finally:
        await consumer.stop()  # also after a failed start: it holds a connection
