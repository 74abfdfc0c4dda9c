"""Bytes in, typed events out: the one place department payloads are parsed and checked.

``decode`` never raises on bad input: it returns a ``DeadLetter`` that says why, so the caller
can publish it and go on with the next record.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

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
    shape = _shape(spec.schema)
    if shape.nested:
        data = model.model_dump()
    else:  # the validated values themselves: a dump would copy them for nothing
        data = {**model.__dict__, **(model.__pydantic_extra__ or {})}
    for name in shape.datetimes:
        moment = data[name]
        if moment is not None:
            if moment.tzinfo is None:  # department systems send local time without a zone
                moment = moment.replace(tzinfo=CITY_TZ)
            data[name] = moment.astimezone(UTC)  # CEL takes fixed offsets, not zone names
    ts = data["ts"].timestamp()
    data["hour"], data["weekday"] = local_hour_weekday(ts)
    return Event(topic=topic, key=str(data[spec.key_field]), ts=ts, data=data)


@dataclass(frozen=True, slots=True)
class _Shape:
    datetimes: tuple[str, ...]
    nested: bool
    """Some field holds models (a waybill's route): dump to plain dicts for conditions."""


@cache
def _shape(schema: type[BaseModel]) -> _Shape:
    datetimes, nested = [], False
    for name, info in schema.model_fields.items():
        text = str(info.annotation)
        if "datetime" in text:
            datetimes.append(name)
        if "LatLon" in text or "BaseModel" in text:
            nested = True
    return _Shape(tuple(datetimes), nested)


@lru_cache(maxsize=4096)
def _offset_for_hour(hour: int) -> float:
    return CITY_TZ.utcoffset(datetime.fromtimestamp(hour * 3600, UTC).replace(tzinfo=None)
                             ).total_seconds()


def local_hour_weekday(ts: float) -> tuple[int, int]:
    """The city's local hour (0-23) and ISO weekday (1 = Monday) at epoch ``ts``.

    >>> local_hour_weekday(1714501800.0)   # 2024-04-30T18:30Z is Wednesday 02:30 in Beijing
    (2, 3)
    """
    local = ts + _offset_for_hour(int(ts // 3600))
    days, seconds = divmod(local, 86400)
    return int(seconds // 3600), (int(days) + 3) % 7 + 1  # 1970-01-01 was a Thursday


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
