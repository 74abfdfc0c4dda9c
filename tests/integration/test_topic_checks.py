"""Topics as the registry gives them, on the real broker: the broker creates no topic on a
client's first request, and ``create-topics`` reports — and with ``--fix`` repairs — an existing
topic whose partition count or cleanup policy differs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError

from engine.kafka_client.admin import _wait_for_leaders, check_topics
from topics.records import Alert
from topics.registry import TopicSpec

pytestmark = pytest.mark.broker


async def _create(bootstrap: str, name: str, partitions: int, configs: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
        await _wait_for_leaders(admin, [name])
    finally:
        await admin.close()


async def _partitions(bootstrap: str, name: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (topic,) = await admin.describe_topics([name])
        return len(topic["partitions"])
    finally:
        await admin.close()


def test_a_topic_with_too_few_partitions_or_the_wrong_policy_is_reported_then_fixed(kafka):
    stem = uuid.uuid4().hex[:8]
    events = TopicSpec(f"check.{stem}.events", "key", Alert, "event", partitions=6)
    state = TopicSpec(f"check.{stem}.orders", "key", Alert, "state", partitions=3)
    asyncio.run(_create(kafka.bootstrap, events.name, 1, {}))
    asyncio.run(_create(kafka.bootstrap, state.name, 3, {"cleanup.policy": "delete"}))

    found = asyncio.run(check_topics(kafka.bootstrap, [events, state]))
    assert [(p.topic, p.problem, p.fixable, p.fixed) for p in found] == [
        (events.name, "1 partitions where the registry gives 6", True, False),
        (state.name, "cleanup.policy delete where the registry gives compact", True, False)]

    fixed = asyncio.run(check_topics(kafka.bootstrap, [events, state], fix=True))
    assert all(p.fixed for p in fixed) and len(fixed) == 2
    assert asyncio.run(_partitions(kafka.bootstrap, events.name)) == 6
    assert asyncio.run(check_topics(kafka.bootstrap, [events, state])) == []


def test_more_partitions_than_the_registry_gives_is_reported_as_not_fixable(kafka):
    spec = TopicSpec(f"check.{uuid.uuid4().hex[:8]}.events", "key", Alert, "event",
                     partitions=2)
    asyncio.run(_create(kafka.bootstrap, spec.name, 4, {}))
    (problem,) = asyncio.run(check_topics(kafka.bootstrap, [spec], fix=True))
    assert not problem.fixable and not problem.fixed
    assert str(problem).endswith("4 partitions where the registry gives 2 (not fixable in "
                                 "place)")


def test_create_topics_on_a_registry_conforming_broker_exits_zero(kafka):
    result = subprocess.run([sys.executable, "-m", "engine.cli", "create-topics",
                             "--bootstrap", kafka.bootstrap], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "created 0 topics" in result.stdout


def test_the_broker_creates_no_topic_on_a_producers_first_request(kafka):
    name = f"never.created.{uuid.uuid4().hex[:8]}"

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, request_timeout_ms=3000)
        await producer.start()
        try:
            await producer.send_and_wait(name, b"x")
        finally:
            await producer.stop()

    async def topics() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    with pytest.raises((KafkaTimeoutError, UnknownTopicOrPartitionError)):
        asyncio.run(send())
    assert name not in asyncio.run(topics())
