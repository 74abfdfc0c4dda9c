"""Hostile values for the settings and the metrics port added with issue 20: a clear error
naming the setting, or an answer — and the port goes on serving."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from engine import metrics
from engine.kafka_client.admin import min_insync_replicas, replication_factor


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "1e3", "3.0", "99999999999", "३"])
def test_a_replication_setting_that_is_not_a_count_is_refused_by_name(monkeypatch, raw):
    monkeypatch.setenv("YUJING_REPLICATION_FACTOR", raw)
    with pytest.raises(ValueError, match="YUJING_REPLICATION_FACTOR="):
        replication_factor()
    monkeypatch.setenv("YUJING_MIN_INSYNC_REPLICAS", raw)
    with pytest.raises(ValueError, match="YUJING_MIN_INSYNC_REPLICAS="):
        min_insync_replicas(3)


def test_replication_settings_read_as_given_and_default_when_empty(monkeypatch):
    monkeypatch.setenv("YUJING_REPLICATION_FACTOR", " 3 ")
    monkeypatch.setenv("YUJING_MIN_INSYNC_REPLICAS", "")
    assert replication_factor() == 3 and min_insync_replicas(3) == 2
    assert replication_factor(1) == 1  # a flag wins over the environment


def _read_to_close(conn: socket.socket) -> bytes:
    # The server writes status line, headers and body in separate sends: one recv() may see
    # only the first of them, so read until the server closes.
    chunks = []
    while chunk := conn.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def test_garbage_on_the_metrics_port_gets_an_error_and_the_port_goes_on_serving():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    metrics.serve(port, lambda: None)
    answers = []
    for garbage in (b"\x00\xff\xfe garbage\r\n\r\n",
                    b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
                    b"POST /readyz HTTP/1.1\r\nContent-Length: -5\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(garbage)
            conn.shutdown(socket.SHUT_WR)
            answers.append(_read_to_close(conn))
    # Bytes that are no request: the page of a 400 (no HTTP version to answer with).
    assert b"Error code: 400" in answers[0], answers[0]
    # A request line longer than the server reads: 414, no metrics page.
    assert answers[1].startswith(b"HTTP/1.0 414"), answers[1][:60]
    # A nonsense body length on a path that reads no body: the answer the path gives.
    assert answers[2].startswith(b"HTTP/1.0 200") and answers[2].endswith(b"ready\n"), answers[2]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as page:
        assert (page.status, page.read()) == (200, b"alive\n")
