"""Bytes in, typed events out: the one place department payloads are parsed and checked.

``decode`` never raises on bad input: it returns a ``DeadLetter`` that says why, so the caller
can publish it and go on with the next record.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from topics.records import DeadLetter
from topics.registry import EVENT_TOPICS
from topics.schemas import CITY_TZ


@dataclass(slots=True)
class Event:
    """A validated department event as the scoring core sees it.

    ``ts`` is event time in epoch seconds; ``data`` holds the validated fields with datetimes in
    UTC (what CEL compares) plus ``hour`` and ``weekday`` in the city's local time (CEL has no
    time-zone functions, and night-time rules need local hours).
    """

    topic: str
    key: str
    ts: float
    data: dict[str, Any] = field(repr=False)


def decode(
    topic: str,
    value: bytes | str | dict[str, Any],
    *,
    key: bytes | str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> Event | DeadLetter:
    """Parse and validate one record of ``topic``; a ``DeadLetter`` says why it is unusable.

    >>> ev = decode("events.hazchem.vehicle",
    ...     b'{"event_id":"e1","ts":"2024-05-01T02:30:00+08:00","vehicle_id":"V1",'
    ...     b'"lat":30.1,"lon":120.2,"speed_kmh":72}')
    >>> ev.key, ev.ts, ev.data["speed_kmh"], ev.data["hour"]
    ('V1', 1714501800.0, 72.0, 2)
    >>> decode("events.hazchem.vehicle", b'{"event_id":"e2"', offset=7).reason
    'not JSON: unexpected end of data: line 1 column 17 (char 16)'
    """

    def dead(reason: str) -> DeadLetter:
        return dead_letter(topic, value, reason, key=key, partition=partition, offset=offset)

    spec = EVENT_TOPICS.get(topic)
    if spec is None:
        return dead(f"unknown topic {topic!r}")
    if isinstance(value, dict):
        raw = value
    else:
        try:
            raw = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return dead(f"not JSON: {exc}")
    if not isinstance(raw, dict):
        return dead(f"not a JSON object but {type(raw).__name__}")
    try:
        model = spec.schema.model_validate(raw)
    except ValidationError as exc:
        return dead(f"does not match the {topic} schema: {_brief(exc)}")
    data = model.model_dump()
    for name, val in data.items():
        if isinstance(val, datetime):
            data[name] = val.astimezone(UTC)
    ts: datetime = model.ts  # type: ignore[attr-defined]
    local = ts.astimezone(CITY_TZ)
    data["hour"] = local.hour
    data["weekday"] = local.isoweekday()
    return Event(topic=topic, key=str(data[spec.key_field]), ts=ts.timestamp(), data=data)


def dead_letter(
    topic: str,
    value: bytes | str | dict[str, Any],
    reason: str,
    *,
    key: bytes | str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> DeadLetter:
    """A dead-letter record keeping the original bytes (as text when they are UTF-8)."""
    if isinstance(value, dict):
        value = orjson.dumps(value)
    if isinstance(value, str):
        text, encoding = value, "utf-8"
    else:
        try:
            text, encoding = value.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(value).decode("ascii"), "base64"
    if isinstance(key, bytes):
        key = key.decode("utf-8", errors="replace")
    return DeadLetter(source_topic=topic, partition=partition, offset=offset, key=key,
                      value=text, encoding=encoding, reason=reason)


def _brief(exc: ValidationError) -> str:
    """'field: message' for each schema error, on one line."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(event)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
