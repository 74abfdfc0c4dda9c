"""Applying reference records to the reference data models consult, from whichever source.

Apart from the Kafka reader (``engine.kafka_client.reference``) so that replay, which reads
reference records from files and envelopes, imports no Kafka client.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from models.refdata import ReferenceData
from topics.codec import Event
from topics.reference import LOOKUP_EVENT_TOPICS, REFERENCE_SCHEMAS


def apply_reference(reference: ReferenceData, topic: str, key: str,
                    value: bytes | dict[str, Any] | None) -> str | None:
    """Store (or, for a null value, delete) one reference record; return why it was refused."""
    if value is None or value == b"":
        reference.put(topic, key, None)
        return None
    try:
        raw = orjson.loads(value) if isinstance(value, bytes) else value
        record = REFERENCE_SCHEMAS[topic].model_validate(raw).model_dump(mode="json")
    except (orjson.JSONDecodeError, ValidationError) as exc:
        return f"bad {topic} record {key!r}: {exc}"
    reference.put(topic, key, record)
    return None


def track_lookup_event(reference: ReferenceData, event: Event) -> None:
    """Keep the events of lookup topics (waybills) as reference, each version in force from
    its event time: a backlog read after newer versions is judged as it was live."""
    if event.topic in LOOKUP_EVENT_TOPICS:
        reference.put(event.topic, event.key, event.data, at=event.ts)
