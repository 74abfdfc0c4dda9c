"""The secured broker: SASL_SSL with SCRAM (and PLAIN), a generated CA, yujing's ACLs.

Clients are plain aiokafka ones given the SASL/SSL keyword arguments; what they meet is a real
Kafka broker started by the ``secure_kafka`` fixture.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from aiokafka.helpers import create_ssl_context

from engine.broker_security import DISPATCH_GROUP, ensure_tls
from tests.integration.secure_kit import SecureBroker
from topics.registry import (
    ALERTS,
    DEADLETTER,
    EVENT_TOPICS,
    FEEDBACK,
    INCIDENTS,
    ORDERS,
    SCORECARDS,
)

pytestmark = pytest.mark.broker

FAST = 10.0
"""Seconds within which a refused connection must be reported (not retried for minutes)."""


async def send(options: dict[str, Any], topic: str, value: bytes) -> tuple[int, int]:
    producer = AIOKafkaProducer(**options, request_timeout_ms=15000)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, value, key=b"secure-test")
        return sent.partition, sent.offset
    finally:
        await producer.stop()


async def read_one(options: dict[str, Any], topic: str, partition: int, offset: int) -> bytes:
    """The record at ``offset``, read outside any group (no offsets committed on the shared
    broker)."""
    consumer = AIOKafkaConsumer(**options, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        message = await asyncio.wait_for(consumer.getone(), 30)
        return message.value
    finally:
        await consumer.stop()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_worker_writes_alerts_and_dispatch_reads_them(secure_kafka: SecureBroker, mechanism):
    value = f"alert {uuid.uuid4()}".encode()
    worker = secure_kafka.client_options(secure_kafka.worker, mechanism)
    partition, offset = asyncio.run(send(worker, ALERTS.name, value))
    dispatch = secure_kafka.client_options(secure_kafka.dispatch, mechanism)
    assert asyncio.run(read_one(dispatch, ALERTS.name, partition, offset)) == value


def test_department_writes_feedback_but_not_alerts(secure_kafka: SecureBroker):
    department = secure_kafka.client_options(secure_kafka.department)
    value = f"feedback {uuid.uuid4()}".encode()
    partition, offset = asyncio.run(send(department, FEEDBACK.name, value))
    dispatch = secure_kafka.client_options(secure_kafka.dispatch)
    assert asyncio.run(read_one(dispatch, FEEDBACK.name, partition, offset)) == value
    started = time.monotonic()
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(send(department, ALERTS.name, b"a forged alert"))
    assert time.monotonic() - started < FAST


async def subscribe_and_read(options: dict[str, Any], topic: str) -> None:
    # Subscribed (not assigned) partitions: aiokafka reports an unauthorised topic of its
    # metadata, where an assigned partition's refused fetches are retried in silence.
    consumer = AIOKafkaConsumer(topic, **options, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()


def test_department_cannot_read_alerts(secure_kafka: SecureBroker):
    department = secure_kafka.client_options(secure_kafka.department)
    started = time.monotonic()
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(subscribe_and_read(department, ALERTS.name))
    assert time.monotonic() - started < FAST


def refused_start(options: dict[str, Any]) -> tuple[BaseException, float]:
    """Start a producer that must be refused; return the error and the seconds it took."""
    async def attempt() -> None:
        producer = AIOKafkaProducer(**{"request_timeout_ms": 15000, **options})
        try:
            await producer.start()
        finally:
            await producer.stop()

    started = time.monotonic()
    with pytest.raises(KafkaConnectionError) as refused:
        asyncio.run(attempt())
    return refused.value, time.monotonic() - started


def test_wrong_password_fails_fast(secure_kafka: SecureBroker, caplog):
    options = {**secure_kafka.client_options(secure_kafka.worker),
               "sasl_plain_password": "not-the-password"}
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        error, seconds = refused_start(options)
    assert seconds < FAST
    assert "Unable to bootstrap" in str(error)
    # aiokafka says why only in its log, not in the exception it raises.
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in caplog.text


def test_untrusted_certificate_fails_fast(secure_kafka: SecureBroker, tmp_path, caplog):
    other_ca = ensure_tls(tmp_path, "127.0.0.1").parent / "ca.pem"  # a CA of its own
    options = {**secure_kafka.client_options(secure_kafka.worker),
               "ssl_context": create_ssl_context(cafile=str(other_ca))}
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        error, seconds = refused_start(options)
    assert seconds < FAST
    assert "Unable to bootstrap" in str(error)
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


def test_plaintext_client_cannot_use_the_sasl_listener(secure_kafka: SecureBroker):
    """A client without TLS gets no answer it can read: refused, quickly too."""
    _, seconds = refused_start({"bootstrap_servers": secure_kafka.bootstrap,
                                "request_timeout_ms": 5000})
    assert seconds < FAST


async def joins_group(options: dict[str, Any], group: str, topics: list[str]) -> bool:
    """Join ``group`` reading ``topics`` (nothing committed); True once partitions are
    assigned."""
    consumer = AIOKafkaConsumer(*topics, **options, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="latest")
    await consumer.start()
    try:
        deadline = time.monotonic() + 30
        while not consumer.assignment() and time.monotonic() < deadline:
            await consumer.getmany(timeout_ms=500)
        return bool(consumer.assignment())
    finally:
        await consumer.stop()


async def may_create(options: dict[str, Any], name: str) -> bool:
    """Whether the broker would create topic ``name`` for this client (validated only)."""
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=15000)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, 1, 1)], validate_only=True)
        code = response.topic_errors[0][1]
        assert code in (0, TopicAuthorizationFailedError.errno), response
        return code == 0
    finally:
        await admin.close()


def test_services_do_their_own_work(secure_kafka: SecureBroker):
    """What the worker, dispatch and tracking do on the broker, each as its own principal:
    its consumer group, its state and outputs, the topics it creates; and not more."""
    worker = secure_kafka.client_options(secure_kafka.worker)
    dispatch = secure_kafka.client_options(secure_kafka.dispatch)
    track = secure_kafka.client_options(secure_kafka.track)
    # The worker: Faust's group is the app id; it creates its "<app id>-..." topics.
    assert asyncio.run(joins_group(worker, "yujing", list(EVENT_TOPICS)))
    assert asyncio.run(may_create(worker, "yujing-acl-test-changelog"))
    assert not asyncio.run(may_create(worker, "alerts-acl-test"))
    with pytest.raises(GroupAuthorizationFailedError):
        asyncio.run(joins_group(worker, DISPATCH_GROUP, [ALERTS.name]))
    asyncio.run(send(worker, DEADLETTER.name, b"unreadable"))
    # Dispatch: its group over alerts and feedback, its orders and incidents written and read.
    assert asyncio.run(joins_group(dispatch, DISPATCH_GROUP, [ALERTS.name, FEEDBACK.name]))
    for topic in (ORDERS.name, INCIDENTS.name):
        value = f"state {uuid.uuid4()}".encode()
        assert asyncio.run(read_one(dispatch, topic, *asyncio.run(send(dispatch, topic, value)))
                           ) == value
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(send(dispatch, ALERTS.name, b"not its to write"))
    # Tracking: scorecards written (idempotent, as it does) and read back.
    card = f"card {uuid.uuid4()}".encode()
    written = asyncio.run(send({**track, "enable_idempotence": True}, SCORECARDS.name, card))
    assert asyncio.run(read_one(track, SCORECARDS.name, *written)) == card
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(subscribe_and_read(track, DEADLETTER.name))
