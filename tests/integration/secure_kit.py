"""A secured broker for tests: SASL_SSL, SCRAM users, a generated CA and yujing's ACLs.

``secure_broker(home)`` starts one (every port free, picked at random) and yields a
``SecureBroker``; the session fixture ``secure_kafka`` in ``tests/conftest.py`` shares one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from engine import broker, broker_security
from engine.broker_security import ADMIN, DISPATCH, TRACK, WORKER, BrokerSecurity
from engine.kafka_client.admin import ensure_topics
from engine.kafka_client.connection import KafkaConnection, SaslMechanism
from tests.integration.kafkakit import free_ports

DEPARTMENT = "dept-fire"


class Principal(BaseModel):
    username: str
    password_file: Path
    """Mode 0600; the password is its first line."""

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()


class SecureBroker(BaseModel):
    """A running secured broker, as a client sees it.

    - ``bootstrap``: the SASL_SSL listener (``127.0.0.1:PORT``), SCRAM-SHA-256, SCRAM-SHA-512
      and PLAIN, every user for each.
    - ``ca_file``: the PEM CA its certificate is signed by (for ``ssl_context`` / ``cafile``).
    - ``admin``, ``worker``, ``dispatch``, ``track``, ``department``: the principals
      (``yujing-admin`` a super user; the others with the ACLs of
      ``engine.broker_security.acl_set``; the department is ``dept-fire``, who may only write
      ``dispatch.feedback``), each a username and a password file.
    - ``internal_bootstrap``: the PLAINTEXT listener, where every client is a super user
      (``User:ANONYMOUS``); for setting up and inspecting, not for the code under test.

    Every topic of the registry exists (created by the admin before the first test)."""

    bootstrap: str
    ca_file: Path
    admin: Principal
    worker: Principal
    dispatch: Principal
    track: Principal
    department: Principal
    internal_bootstrap: str
    home: Path

    def connection(self, principal: Principal, mechanism: SaslMechanism = "SCRAM-SHA-512"
                   ) -> KafkaConnection:
        """``principal``'s connection over SASL_SSL with ``mechanism``, as a yujing process
        configured with ``[kafka]`` makes it."""
        return KafkaConnection(bootstrap=self.bootstrap, security_protocol="SASL_SSL",
                               sasl_mechanism=mechanism, username=principal.username,
                               password_file=principal.password_file, ca_file=self.ca_file)

    def client_options(self, principal: Principal, mechanism: SaslMechanism = "SCRAM-SHA-512",
                       ) -> dict[str, Any]:
        """aiokafka keyword arguments for ``principal`` over SASL_SSL with ``mechanism``."""
        return self.connection(principal, mechanism).client_options()


def describe(cfg: broker.BrokerConfig) -> SecureBroker:
    """The client's view of a started secured broker ``cfg``."""
    assert cfg.security is not None
    home = cfg.home

    def principal(name: str) -> Principal:
        broker_security.password(home, name)  # made at the first start; here for certain
        return Principal(username=name, password_file=broker_security.password_file(home, name))

    return SecureBroker(
        bootstrap=f"{cfg.host}:{cfg.security.sasl_port}",
        ca_file=broker_security.ca_file(home),
        admin=principal(ADMIN), worker=principal(WORKER), dispatch=principal(DISPATCH),
        track=principal(TRACK), department=principal(DEPARTMENT),
        internal_bootstrap=cfg.bootstrap, home=home,
    )


@contextmanager
def secure_broker(home: Path, timeout: float = 180.0) -> Iterator[SecureBroker]:
    """Start a secured broker under ``home`` on free ports, with the registry's topics; stop it
    on exit."""
    port, controller, sasl = free_ports(3)
    cfg = broker.BrokerConfig(port=port, controller_port=controller, home=home,
                              security=BrokerSecurity(sasl_port=sasl, departments=[DEPARTMENT]))
    try:
        broker.start(cfg, timeout=timeout)
        asyncio.run(ensure_topics(cfg.bootstrap))  # the internal listener: a super user
        yield describe(cfg)
    finally:
        broker.stop(cfg)
