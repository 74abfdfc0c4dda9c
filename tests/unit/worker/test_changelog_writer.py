"""The worker's changelog writer, with aiokafka's own batches and no broker: state records go
out as one batch per partition, each key in its events' partition, in order."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from aiokafka.record.default_records import DefaultRecordBatch

from engine.worker.state import ChangelogWriter

Sent = list[tuple[str, int, list[tuple[bytes, bytes | None]]]]


class RecordingProducer(AIOKafkaProducer):
    """aiokafka's producer, never started: its batches are built as for the broker, and what
    would be sent is kept."""

    def __init__(self, max_batch_size: int) -> None:
        super().__init__(bootstrap_servers="127.0.0.1:1", max_batch_size=max_batch_size)
        self.sent: Sent = []

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        built = bytes(batch._builder.build())
        self.sent.append((topic, partition,
                          [(r.key, r.value) for r in DefaultRecordBatch(built)]))
        delivered = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered


def write(records: list[tuple[bytes, bytes | None]], max_batch_size: int) -> Sent:
    table = SimpleNamespace(changelog_topic=SimpleNamespace(
        get_topic_name=lambda: "app-state-changelog"))

    async def run() -> Sent:
        writer = ChangelogWriter("127.0.0.1:1", table, partitions=4)
        producer = RecordingProducer(max_batch_size)
        writer._producer, writer._open = producer, True
        await asyncio.gather(*writer.write(records))
        return producer.sent

    return asyncio.run(run())


def test_one_batch_per_partition_each_key_in_the_partition_of_its_events():
    records = [(f"K{i}".encode(), f"v{i}".encode()) for i in range(40)] + [(b"K3", None)]
    sent = write(records, 1 << 20)
    partitions = [partition for _, partition, _ in sent]
    assert len(partitions) == len(set(partitions)) == 4
    for topic, partition, batch in sent:
        assert topic == "app-state-changelog"
        assert {(murmur2(key) & 0x7FFFFFFF) % 4 for key, _ in batch} == {partition}
    assert sorted(sent_record for *_, batch in sent for sent_record in batch
                  if sent_record[1] is not None) == sorted(r for r in records if r[1])
    # one key's records keep their order: the tombstone comes after the state
    assert [value for *_, batch in sent for key, value in batch if key == b"K3"] == [b"v3", None]


def test_a_full_batch_goes_out_and_the_next_carries_on_in_order():
    records: list[tuple[bytes, bytes | None]] = [(b"K", bytes([i]) * 60) for i in range(5)]
    sent = write(records, 150)  # two such records fill a batch
    assert len(sent) >= 3 and len({partition for _, partition, _ in sent}) == 1
    assert [value for *_, batch in sent for _, value in batch] == [value for _, value in records]
    assert max(len(batch) for *_, batch in sent) <= 2
