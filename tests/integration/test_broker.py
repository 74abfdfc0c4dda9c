"""engine.broker runs a real Kafka broker: start, produce and consume with aiokafka, stop.

It starts its own broker (not the session's ``kafka`` fixture) on two free ports under a
temporary home, so it can run next to the session broker and a developer's own one; the jar
cache is the usual one, so only the very first run downloads anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from engine import broker
from engine.kafka_client.admin import ensure_topics
from tests.integration.kafkakit import free_ports
from topics.records import Alert
from topics.registry import TopicSpec

pytestmark = pytest.mark.broker

N = 100


@pytest.fixture
def cfg(tmp_path: Path) -> Iterator[broker.BrokerConfig]:
    port, controller_port = free_ports(2)
    cfg = broker.BrokerConfig(
        port=port, controller_port=controller_port, home=tmp_path / "kafka", heap="512m"
    )
    yield cfg
    broker.stop(cfg)  # never leave a JVM behind, also when the test fails


async def test_broker_start_produce_consume_stop(cfg: broker.BrokerConfig) -> None:
    # start() blocks while the JVM comes up; keep the event loop free meanwhile.
    pid = await asyncio.to_thread(broker.start, cfg, 180.0)
    assert pid > 0 and cfg.pid_file.read_text().strip() == str(pid)
    assert await asyncio.to_thread(broker.start, cfg) == pid  # idempotent

    st = await asyncio.to_thread(broker.status, cfg)
    assert (st.running, st.answering, st.pid) == (True, True, pid)
    assert st.bootstrap == f"127.0.0.1:{cfg.port}" and st.kafka_version == cfg.kafka_version

    topic = "broker-selftest"
    # The project's broker creates topics only when asked (auto.create.topics.enable=false).
    await ensure_topics(cfg.bootstrap, [TopicSpec(topic, "key", Alert, "event", partitions=1)])
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(N):
            await producer.send(topic, key=f"k{i % 7}".encode(), value=f"m{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=cfg.bootstrap,
        group_id="broker-selftest",  # a consumer group: needs the group coordinator
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    got: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while len(got) < N:
                batches = await consumer.getmany(timeout_ms=1000)
                got += [m.value for msgs in batches.values() for m in msgs if m.value]
        await consumer.commit()
        committed = await consumer.committed(next(iter(consumer.assignment())))
    finally:
        await consumer.stop()
    assert sorted(got) == sorted(f"m{i}".encode() for i in range(N))
    assert committed == N  # one partition (num.partitions=1): offsets 0..N-1

    assert await asyncio.to_thread(broker.stop, cfg) is True
    st = await asyncio.to_thread(broker.status, cfg)
    assert (st.running, st.answering, st.pid) == (False, False, None)
    assert not cfg.pid_file.exists()
    assert await asyncio.to_thread(broker.stop, cfg) is False  # nothing left to stop
