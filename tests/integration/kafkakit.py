"""Talking to the test broker: produce events, read topics, run a worker process."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from engine.kafka_client.whole_topics import partitions_of
from engine.processes import stop_group

REPO = Path(__file__).resolve().parents[2]


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports nothing listens on (for a test's own broker)."""
    # Hold every socket until all are picked, so the n ports are distinct.
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


async def produce(bootstrap: str, records: list[tuple[str, bytes | None, bytes]],
                  client: dict[str, Any] | None = None) -> list[tuple[int, int]]:
    """Send (topic, key, value) records in order; return each one's (partition, offset).
    ``client``: aiokafka options to connect with instead (a secured broker's principal)."""
    producer = AIOKafkaProducer(**(client or {"bootstrap_servers": bootstrap}), linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=value, key=key)
                   for topic, key, value in records]
        metas = [await f for f in futures]
        return [(m.partition, m.offset) for m in metas]
    finally:
        await producer.stop()


async def start_group_at_end(bootstrap: str, group: str, topics: list[str]) -> None:
    """Commit the end offsets ``topics`` have now for ``group`` (as an operator's
    ``kafka-consumer-groups --reset-offsets --to-latest``): a worker of that group reads only
    what is produced after, not the earlier tests' events the broker keeps."""
    partitions = await partitions_of(bootstrap, topics)
    assert partitions, f"none of {topics} exists"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def read_until(bootstrap: str, topic: str, done: Callable[[list[dict[str, Any]]], bool],
                     wanted: Callable[[dict[str, Any]], bool], timeout: float = 120.0,
                     give_up: Callable[[], bool] = lambda: False,
                     client: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Read ``topic`` from the start, keeping JSON records ``wanted`` says are ours, until
    ``done(kept)``, the timeout or ``give_up()`` (say, the worker died); return what was kept.
    ``client``: aiokafka options to connect with instead (a secured broker's principal)."""
    consumer = AIOKafkaConsumer(topic, **(client or {"bootstrap_servers": bootstrap}),
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    kept: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not done(kept) and not give_up():
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for message in messages:
                    try:  # other tests' malformed records and tombstones are not ours
                        record = orjson.loads(message.value)
                    except (orjson.JSONDecodeError, TypeError):
                        continue
                    if not isinstance(record, dict):
                        continue
                    record["_key"] = message.key.decode() if message.key else None
                    if wanted(record):
                        kept.append(record)
        return kept
    finally:
        await consumer.stop()


@contextmanager
def yujing_process(log: Path, *args: str, stdout: Path | None = None,
                   module: str = "engine.cli", env: dict[str, str] | None = None
                   ) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``yujing ARGS`` as a real process (output to ``log``, or stdout to ``stdout``;
    ``module``: the command line to run, ``engine.cli`` or a test's own launcher of it; ``env``:
    variables to add); SIGTERM it on exit, SIGKILL if it does not stop within 30 s."""
    out = (stdout or log).open("ab")
    err = log.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, stdout=out,
                            stderr=err,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                            start_new_session=True)
    try:
        yield proc
    finally:
        stop_group(proc, 30)
        out.close()
        err.close()


def worker_process(bootstrap: str, rules: Path, app_id: str, log: Path, *extra: str,
                   module: str = "engine.cli", env: dict[str, str] | None = None
                   ) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """Run ``yujing worker`` as a real process; stop it with SIGTERM on exit."""
    return yujing_process(log, "worker", "--rules", str(rules), "--bootstrap", bootstrap,
                          "--app-id", app_id, "--metrics-port", "0", *extra, module=module,
                          env=env)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def dumps(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value)


def wait_for_log(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 90.0,
                 after: int = 0) -> int:
    """Wait until ``text`` appears in the worker's log past byte ``after``; return its end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_bytes()
        found = content.find(text.encode(), after)
        if found >= 0:
            return found + len(text)
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited:\n{content[-3000:].decode(errors='replace')}")
        time.sleep(0.2)
    raise TimeoutError(f"{text!r} not in the worker log after {timeout}s")


def quick_ack_routes(path: Path, models: str, ack: str) -> Path:
    """Write a routing file giving ``models`` (a model-id glob) ``ack`` to be acknowledged at
    every level, and everything else (other tests' alerts on the shared broker) an hour or
    more: those wait long enough not to churn."""
    path.write_text(f"""\
defaults:
  ack_within: {{red: 1h, orange: 1h, yellow: 1h, blue: 4h}}
  group_within: 1m
route:
  routes:
    - name: this test's models must be acknowledged within {ack}
      match: {{model_id: "{models}"}}
      ack_within: {{red: {ack}, orange: {ack}, yellow: {ack}, blue: {ack}}}
""", encoding="utf-8")
    return path


def silence_key(bootstrap: str, key: str, reason: str = "sensor under repair") -> None:
    """``yujing silence add --match key=KEY --for 1h`` as an operator types it."""
    subprocess.run([sys.executable, "-m", "engine.cli", "silence", "add", "--bootstrap",
                    bootstrap, "--match", f"key={key}", "--for", "1h", "--reason", reason],
                   cwd=REPO, check=True, capture_output=True)
