"""A certificate nobody trusts stops a command at once with one line
(engine.kafka_client.access); a server that does not answer is left to the command's own
handling. Real TLS handshakes against a local server; the refused password needs a broker
(tests/integration/test_secure_e2e.py)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from engine.kafka_client.access import AccessRefused, check_access
from engine.kafka_client.connection import KafkaConnection


def _self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}-key.pem", folder / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1", "-days", "1"],
                   check=True, capture_output=True)
    return key, cert


async def _serving(context: ssl.SSLContext | None, check: KafkaConnection) -> bool:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.5)
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        return await check_access(f"127.0.0.1:{port}", check, timeout_s=3)


def test_a_certificate_signed_by_an_unknown_ca_is_refused_in_one_line(tmp_path):
    key, cert = _self_signed(tmp_path, "broker")
    _, other_ca = _self_signed(tmp_path, "other-ca")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    client = KafkaConnection(security_protocol="SSL", ca_file=other_ca)
    with pytest.raises(AccessRefused, match=r"certificate of Kafka at 127\.0\.0\.1:\d+ is not "
                                            r"trusted \(.*\): kafka.ca_file"):
        asyncio.run(_serving(context, client))


def test_a_server_that_does_not_answer_is_not_a_refusal():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens
    client = KafkaConnection(security_protocol="SSL")
    assert asyncio.run(check_access(f"127.0.0.1:{port}", client, timeout_s=2)) is False
