"""Shared fixtures: the real Kafka broker the integration tests run against.

The session starts one single-node KRaft broker from Kafka's jars (fetched with Maven on first
use) under a temporary folder, on ports that do not clash with a developer's own broker
(``YUJING_TEST_KAFKA_PORT``, default 19092, and the next port for the controller). Tests of
security ask for ``secure_kafka``, a broker of their own with SASL_SSL and ACLs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from engine import broker
from engine.kafka_client.admin import ensure_topics
from tests.integration.secure_kit import SecureBroker, secure_broker


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[broker.BrokerConfig]:
    port = int(os.environ.get("YUJING_TEST_KAFKA_PORT", "19092"))
    cfg = broker.BrokerConfig(port=port, controller_port=port + 1,
                              home=tmp_path_factory.mktemp("kafka"))
    broker.start(cfg, timeout=180)
    try:
        asyncio.run(ensure_topics(cfg.bootstrap))
        yield cfg
    finally:
        broker.stop(cfg)


@pytest.fixture(scope="session")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """One secured broker for the session (SASL_SSL with SCRAM users, a generated CA, the
    StandardAuthorizer with yujing's ACLs), on free ports, every registry topic created.

    Yields a ``tests.integration.secure_kit.SecureBroker``: ``bootstrap`` (SASL_SSL),
    ``ca_file``, and per principal (``admin``, ``worker``, ``dispatch``, ``track``,
    ``department``) a ``username`` and a ``password_file``; ``client_options(principal)``
    gives aiokafka's keyword arguments."""
    with secure_broker(tmp_path_factory.mktemp("secure-kafka")) as found:
        yield found
