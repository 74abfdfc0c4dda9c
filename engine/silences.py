"""Silences and maintenance windows: alerts still recorded, marked so nobody is dispatched.

A silence is a record on ``control.silences`` (compacted, keyed by its id): matchers over alert
fields, a start, an end, a reason and who set it. Every worker reads the topic whole and marks
each alert it publishes with the ids of the silences in force that match it (``silenced_by``);
dispatch does not make work orders for such alerts, tracking still counts them.

>>> from topics.records import Alert, Silence
>>> book = SilenceBook()
>>> book.put(Silence(silence_id="s1", matchers={"model_id": "hazchem.tank.*", "key": "T1"},
...                  starts_at=0, ends_at=3600, reason="sensor under repair"))
>>> alert = Alert(alert_id="a", model_id="hazchem.tank.level_high", model_version=1,
...               state="firing", severity="red", departments=["emergency_management"],
...               key="T1", sources=[], first_ts=0, last_ts=0, summary="")
>>> book.apply([alert], now=60)[0].silenced_by, book.apply([alert], now=3600)[0].silenced_by
(['s1'], [])
"""

from __future__ import annotations

import logging
import time
import uuid

import orjson
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from engine.kafka_client.connection import client_options
from engine.kafka_client.whole_topics import read_to_end
from topics.records import Alert, Silence
from topics.registry import SILENCES

log = logging.getLogger("yujing.silences")


class SilenceBook:
    """The silences a process knows, from ``control.silences``."""

    def __init__(self) -> None:
        self._silences: dict[str, Silence] = {}

    def put(self, silence: Silence) -> None:
        self._silences[silence.silence_id] = silence

    def remove(self, silence_id: str) -> None:
        self._silences.pop(silence_id, None)

    def apply_record(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one record of the topic: a silence, or a tombstone lifting one."""
        if value is None:
            if key is not None:
                self.remove(key.decode(errors="replace"))
            return
        try:
            self.put(Silence.model_validate_json(value))
        except ValidationError as exc:
            log.warning("bad silence record %r ignored: %s", key, exc)

    def active(self, now: float) -> list[Silence]:
        return [s for s in self._silences.values() if s.active(now)]

    def all(self) -> list[Silence]:
        return sorted(self._silences.values(), key=lambda s: s.starts_at)

    def apply(self, alerts: list[Alert], now: float) -> list[Alert]:
        """Mark each alert with the silences in force that match it (in place; returned)."""
        active = self.active(now)
        for alert in alerts:
            alert.silenced_by = [s.silence_id for s in active if s.matches(alert)]
        return alerts


def new_silence(matchers: dict[str, str], duration_s: float, reason: str, created_by: str,
                kind: str = "silence", starts_at: float | None = None) -> Silence:
    start = time.time() if starts_at is None else starts_at
    return Silence(silence_id=uuid.uuid4().hex[:12], matchers=matchers, starts_at=start,
                   ends_at=start + duration_s, reason=reason, created_by=created_by,
                   kind=kind)  # type: ignore[arg-type]


async def publish_silence(bootstrap: str, silence: Silence) -> None:
    producer = AIOKafkaProducer(**client_options(bootstrap), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(SILENCES.name, silence.model_dump_json().encode(),
                                     key=silence.silence_id.encode())
    finally:
        await producer.stop()


async def read_silences(bootstrap: str) -> SilenceBook:
    """Read ``control.silences`` from its start to its current end."""
    book = SilenceBook()
    for record in await read_to_end(bootstrap, [SILENCES.name]):
        book.apply_record(record.key, record.value)
    return book


def describe(silence: Silence, now: float) -> dict[str, object]:
    """A silence as the CLI prints it."""
    state = "active" if silence.active(now) else ("pending" if now < silence.starts_at
                                                  else "expired")
    return {**orjson.loads(silence.model_dump_json()), "state": state}
