"""Bytes in, typed events out: the one place department payloads are parsed and checked.

``decode`` never raises on bad input: it returns a ``DeadLetter`` that says why, so the caller
can publish it and go on with the next record.

Event time is bounded (``TimeBounds``): a reading dated far in the future would stand as the
newest of its key for ever (every real reading after it would look late, and an alert dated
2100 could never resolve), and one dated 1970 would fire every timer at once. The worker
accepts event times from ``max_age`` before the wall clock (7 days) to ``max_future`` after it
(10 minutes); replay judges the future by the wall clock too and the age by the newest event
time it has seen. Nothing dated before 2000 is accepted.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from topics.bounds import (
    DEADLETTER_VALUE_BYTES,
    KEY_MAX_CHARS,
    REASON_MAX_CHARS,
    cut,
)
from topics.records import DeadLetter, DeadLetterClass
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


EARLIEST_EVENT_TIME = 946684800.0
"""2000-01-01T00:00:00Z: no department system sends readings older; an epoch of 0 (1970) is a
device or unit error."""


@dataclass(frozen=True, slots=True)
class EventTimePolicy:
    """How far from the clock an event's time may be (seconds)."""

    max_future_s: float = 600.0
    max_age_s: float = 7 * 86400.0
    """0: no horizon (a backfill of old data; only the floor of 2000 applies)."""

    def around(self, now: float, newest: float | None = None) -> TimeBounds:
        """The bounds at wall-clock ``now``; ``newest`` (replay: the newest event time seen)
        takes the clock's place for the age."""
        since = (now if newest is None else newest) - self.max_age_s if self.max_age_s \
            else EARLIEST_EVENT_TIME
        return TimeBounds(max(EARLIEST_EVENT_TIME, since), now + self.max_future_s, self)


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """The event times ``decode`` accepts: from ``not_before`` to ``not_after`` (epoch s)."""

    not_before: float
    not_after: float
    policy: EventTimePolicy = field(default_factory=EventTimePolicy)

    def problem(self, ts: float) -> str | None:
        policy = self.policy
        if ts > self.not_after:
            ahead = ts - self.not_after + policy.max_future_s
            return (f"event time {_iso(ts)} is {_span(ahead)} ahead of the clock (at most "
                    f"{_span(policy.max_future_s)} is accepted)")
        if ts < self.not_before:
            if ts < EARLIEST_EVENT_TIME:
                return f"event time {_iso(ts)} is before 2000: a clock or unit error"
            newest = _iso(self.not_before + policy.max_age_s)
            return (f"event time {_iso(ts)} is older than the horizon "
                    f"({_span(policy.max_age_s)} before {newest})")
        return None


def _iso(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return f"{ts:.0f} (epoch s)"


def _span(seconds: float) -> str:
    for size, unit in ((365.25 * 86400, "years"), (86400, "days"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def decode(
    topic: str,
    value: bytes | str | dict[str, Any],
    *,
    key: bytes | str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    bounds: TimeBounds | None = None,
) -> Event | DeadLetter:
    """Parse and validate one record of ``topic``; a ``DeadLetter`` says why it is unusable.

    >>> ev = decode("events.hazchem.vehicle",
    ...     b'{"event_id":"e1","ts":"2024-05-01T02:30:00+08:00","vehicle_id":"V1",'
    ...     b'"lat":30.1,"lon":120.2,"speed_kmh":72}')
    >>> ev.key, ev.ts, ev.data["speed_kmh"], ev.data["hour"]
    ('V1', 1714501800.0, 72.0, 2)
    >>> decode("events.hazchem.vehicle", b'{"event_id":"e2"', offset=7).reason
    'not JSON: unexpected end of data: line 1 column 17 (char 16)'
    >>> decode("events.hazchem.vehicle", b'{"event_id":"e3","ts":"2100-01-01T00:00:00Z",'
    ...     b'"vehicle_id":"V1","lat":30.1,"lon":120.2,"speed_kmh":95}',
    ...     bounds=EventTimePolicy().around(1714501800.0)).reason_class
    'event_time'
    """
    try:
        return _decode(topic, value, key, partition, offset, bounds)
    except Exception as exc:  # a defect, or input nothing above foresaw: never the worker's end
        return dead_letter(topic, value, f"could not decode: {type(exc).__name__}: {exc}",
                           key=key, partition=partition, offset=offset,
                           reason_class="undecodable")


def _decode(topic: str, value: bytes | str | dict[str, Any], key: bytes | str | None,
            partition: int | None, offset: int | None, bounds: TimeBounds | None
            ) -> Event | DeadLetter:
    def dead(reason: str, reason_class: DeadLetterClass) -> DeadLetter:
        return dead_letter(topic, value, reason, key=key, partition=partition, offset=offset,
                           reason_class=reason_class)

    spec = EVENT_TOPICS.get(topic)
    if spec is None:
        return dead(f"unknown topic {topic!r}", "unknown_topic")
    if isinstance(value, dict):
        raw = value
    else:
        try:
            raw = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return dead(f"not JSON: {exc}", "not_json")
    if not isinstance(raw, dict):
        return dead(f"not a JSON object but {type(raw).__name__}", "not_object")
    try:
        model = spec.schema.model_validate(raw)
    except ValidationError as exc:
        return dead(f"does not match the {topic} schema: {_brief(exc)}", "schema")
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
            try:
                data[name] = moment.astimezone(UTC)  # CEL takes fixed offsets, not zone names
            except (OverflowError, ValueError):  # year 1 or 9999 with an offset
                return dead(f"{name}: {moment.isoformat()} is out of range", "event_time")
    ts = data["ts"].timestamp()
    if bounds is not None and not bounds.not_before <= ts <= bounds.not_after:
        return dead(bounds.problem(ts) or "event time out of bounds", "event_time")
    data["hour"], data["weekday"] = local_hour_weekday(ts)
    return Event(topic=topic, key=str(data[spec.key_field]), ts=ts, data=data)


def compact_value(event: Event) -> bytes:
    """The event as JSON of its schema's fields (free text already cut; fields the schema does
    not know left out), which ``decode`` reads back to the same event: how a large record
    travels on, bounded.

    >>> ev = decode("events.hotline.ticket", {"event_id": "e", "ts": 1714501800, "ticket_id": "K",
    ...     "category": "gas", "status": "new", "text": "燃气" * 5000, "blob": "x" * 10**6})
    >>> len(compact_value(ev)) < 13_000, decode(ev.topic, compact_value(ev)).data["text"][-19:]
    (True, '…[cut: 10000 chars]')
    """
    fields = EVENT_TOPICS[event.topic].schema.model_fields
    return orjson.dumps({k: v for k, v in event.data.items() if k in fields}, default=str)


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
    reason_class: DeadLetterClass = "schema",
    rule_id: str | None = None,
) -> DeadLetter:
    """A dead-letter record keeping the original bytes (as text when they are UTF-8), or of a
    large record its first ``DEADLETTER_VALUE_BYTES`` with its size and SHA-256: a dead letter
    always fits in a Kafka record, whatever it reports.

    >>> letter = dead_letter("events.hotline.ticket", b"\\x00" * 100_000, "not JSON")
    >>> letter.truncated, letter.size, len(letter.value), letter.sha256[:8]
    (True, 100000, 16384, '9192c25b')
    """
    if isinstance(value, dict):
        try:
            value = orjson.dumps(value, default=str)
        except (TypeError, orjson.JSONEncodeError):
            value = repr(value).encode("utf-8", errors="replace")
    data = value.encode("utf-8", errors="surrogatepass") if isinstance(value, str) else value
    size, digest = len(data), None
    truncated = size > DEADLETTER_VALUE_BYTES
    if truncated:
        digest = hashlib.sha256(data).hexdigest()
        data = data[:DEADLETTER_VALUE_BYTES]
    text = _utf8(data, truncated)
    encoding = "utf-8"
    if text is None:
        text, encoding = base64.b64encode(data).decode("ascii"), "base64"
    if isinstance(key, bytes):
        key = key.decode("utf-8", errors="replace")
    return DeadLetter(source_topic=cut(topic, KEY_MAX_CHARS), partition=partition, offset=offset,
                      key=None if key is None else cut(key, KEY_MAX_CHARS), value=text,
                      encoding=encoding, reason=cut(reason, REASON_MAX_CHARS),  # type: ignore
                      reason_class=reason_class, size=size, sha256=digest, truncated=truncated,
                      rule_id=rule_id)


def _utf8(data: bytes, cut_short: bool) -> str | None:
    """The bytes as text if they are UTF-8 (a prefix cut short may end inside a character)."""
    for drop in range(4 if cut_short else 1):
        try:
            return data[:len(data) - drop].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def _brief(exc: ValidationError) -> str:
    """'field: message' for each schema error, on one line."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(event)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
