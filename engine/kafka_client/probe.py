"""Whether the broker answers, asked the way a client starts: a metadata request for no topics.

Each long-running process runs a ``BrokerProbe`` in its event loop. The answer sets
``yujing_broker_connected`` and, with the process's own condition (the worker: partitions
assigned), what ``/readyz`` says. The probe keeps one connection of its own and logs nothing:
the clients' own errors already say why they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aiokafka.conn import AIOKafkaConnection, create_conn
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from engine import metrics
from engine.kafka_client.connection import current

PROBE_INTERVAL_S = 2.0
PROBE_TIMEOUT_S = 2.0


def hosts(bootstrap: str) -> list[tuple[str, int]]:
    """``"a:9092,b:9093"`` as ``[("a", 9092), ("b", 9093)]``."""
    found = []
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        found.append((host or "127.0.0.1", int(port)))
    return found


class BrokerProbe:
    """Asks the broker for its brokers every ``PROBE_INTERVAL_S`` (``run``, or ``check`` from a
    timer); ``not_ready()`` is what ``/readyz`` reports, read from the metrics server's
    thread."""

    def __init__(self, bootstrap: str, also: Callable[[], str | None] = lambda: None,
                 timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.bootstrap = bootstrap
        self.also = also
        """The process's own readiness: a reason it is not ready, or None."""
        self.timeout_s = timeout_s
        self._conn: AIOKafkaConnection | None = None
        self._reason: str | None = f"broker {bootstrap} not asked yet"
        metrics.BROKER_CONNECTED.set(0)

    def not_ready(self) -> str | None:
        return self._reason

    async def check(self) -> bool:
        """Ask once; set the gauge and the readiness; return whether the broker answered."""
        answered = await self._answers()
        metrics.BROKER_CONNECTED.set(1 if answered else 0)
        self._reason = self.also() if answered else f"broker {self.bootstrap} not answering"
        return answered

    async def run(self, every_s: float = PROBE_INTERVAL_S) -> None:
        try:
            while True:
                await self.check()
                await asyncio.sleep(every_s)
        finally:
            self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _answers(self) -> bool:
        for host, port in hosts(self.bootstrap):
            try:
                async with asyncio.timeout(self.timeout_s):
                    if self._conn is None or not self._conn.connected():
                        self.close()
                        self._conn = await create_conn(
                            host, port, client_id="yujing-probe",
                            request_timeout_ms=int(self.timeout_s * 1000),
                            **current().security_options())
                    metadata = await self._conn.send(MetadataRequest([]))
            except (OSError, KafkaError, TimeoutError):
                with contextlib.suppress(Exception):
                    self.close()
                continue
            # A broker still starting (or fenced) answers with no brokers registered.
            if metadata.brokers:
                return True
        return False
