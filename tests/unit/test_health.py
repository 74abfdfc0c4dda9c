"""The metrics port's health endpoints, and the broker probe facing no broker."""

from __future__ import annotations

import asyncio
import socket
import urllib.error
import urllib.request

from engine import metrics
from engine.kafka_client.probe import BrokerProbe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as page:
            return page.status, page.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_healthz_is_alive_readyz_says_why_not_ready_and_metrics_are_served() -> None:
    reason: list[str | None] = ["broker 127.0.0.1:1 not answering"]
    port = _free_port()
    metrics.serve(port, lambda: reason[0])
    assert _get(port, "/healthz") == (200, "alive\n")
    assert _get(port, "/readyz") == (503, "broker 127.0.0.1:1 not answering\n")
    reason[0] = None
    assert _get(port, "/readyz") == (200, "ready\n")
    status, page = _get(port, "/metrics")
    assert status == 200 and "# TYPE yujing_broker_connected gauge" in page


def test_the_probe_reports_a_broker_that_does_not_answer() -> None:
    port = _free_port()  # nothing listens there
    probe = BrokerProbe(f"127.0.0.1:{port}", timeout_s=1.0)
    metrics.BROKER_CONNECTED.set(1)
    assert asyncio.run(probe.check()) is False
    assert metrics.sample_value("yujing_broker_connected") == 0
    assert probe.not_ready() == f"broker 127.0.0.1:{port} not answering"
