"""What the worker makes of a fetched batch, without Faust: decoding, re-keying, dead letters.

An event whose Kafka key is not its entity key (a producer that keys differently, or a rule
keyed by another field such as ``company_id``) is forwarded to the re-keying topic keyed by the
right value, and scored by the worker that owns that key; when that is this worker (it reads
the key's partition of that topic), it is scored at once instead (``rekey_here``). A batch here
is what Faust's stream yields: items with a ``message`` (topic, key, value, partition, offset).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.core import Origin
from engine.failures import describe, is_fatal
from engine.kafka_client.partitions import partition_of
from topics.codec import Event, compact_value, dead_letter, decode
from topics.records import DeadLetter

FORWARD_RECORD_BYTES = 256 * 1024
"""Largest re-keying record (well under Kafka's default 1 MB message limit)."""
FORWARD_RAW_BYTES = 64 * 1024
"""A re-keyed event larger than this travels as its validated fields, not its original bytes."""

Scored = dict[str, tuple[list[Event], list[Origin | None]]]
"""Per stream: its events, and where each came from."""


@dataclass
class IntakeRouting:
    """Where each event of an intake batch goes."""

    local: list[Event] = field(default_factory=list)
    """Keyed right: scored here for the streams keyed like the topic."""
    origins: list[Origin | None] = field(default_factory=list)
    forwards: dict[int, list[bytes]] = field(default_factory=dict)
    """Per re-keying partition: the envelopes to send there."""
    here: Scored = field(default_factory=dict)
    """Re-keyed to a partition this worker reads: scored at once, per stream."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    consumed: dict[str, int] = field(default_factory=dict)
    """Per topic: records read."""
    newest: dict[tuple[str, int], float] = field(default_factory=dict)
    """Per (topic, partition): the latest event time."""
    ahead: dict[str, int] = field(default_factory=dict)
    """Per topic: events dated after the wall clock (within what the bounds accept)."""


def route_intake(batch: Sequence[Any], *, bounds: Any, partitions: int,
                 rekey_here: frozenset[int], local_streams: frozenset[str],
                 local_only: frozenset[str],
                 stream_keys: Callable[[Event], Iterable[tuple[str, str]]],
                 now: float = float("inf")) -> IntakeRouting:
    """Decode a batch of the department topics and decide, event by event, what is scored here
    and what is re-keyed. ``stream_keys`` is the core's (an event's streams and their keys);
    ``local_streams`` are keyed like their topic, ``local_only`` the topics all of whose
    streams are."""
    routed = IntakeRouting()
    consumed, newest = routed.consumed, routed.newest
    for item in batch:
        message = item.message
        topic = message.topic
        consumed[topic] = consumed.get(topic, 0) + 1
        decoded = decode(topic, message.value, key=message.key,
                         partition=message.partition, offset=message.offset, bounds=bounds)
        if isinstance(decoded, DeadLetter):
            routed.dead_letters.append(decoded)
            continue
        read_from = (topic, message.partition)
        if decoded.ts > newest.get(read_from, 0.0):
            newest[read_from] = decoded.ts
        if decoded.ts > now:
            routed.ahead[topic] = routed.ahead.get(topic, 0) + 1
        keyed_right = message.key is not None and message.key == decoded.key.encode()
        if keyed_right:
            routed.local.append(decoded)
            routed.origins.append((topic, message.partition, message.offset))
            if topic in local_only:
                continue  # every stream of the topic is scored here: nothing to re-key
        try:
            keys = stream_keys(decoded)
        except BaseException as exc:
            if is_fatal(exc):
                raise
            routed.dead_letters.append(dead_letter(
                topic, message.value, f"could not be re-keyed: {describe(exc)}",
                key=message.key, partition=message.partition, offset=message.offset,
                reason_class="scoring"))
            continue
        for stream, key in keys:
            if not (keyed_right and stream in local_streams):
                # The partition the key's owner reads (as ``TableStore._owns`` decides), so
                # the state of ``key`` is where its events arrive.
                partition = partition_of(key.encode(), partitions)
                if partition in rekey_here:
                    events, event_origins = routed.here.setdefault(stream, ([], []))
                    events.append(decoded)
                    event_origins.append((topic, message.partition, message.offset))
                else:
                    routed.forwards.setdefault(partition, []).append(
                        forward_envelope(stream, message, decoded))
    return routed


def forward_envelope(stream: str, message: Any, event: Event) -> bytes:
    """One re-keyed event. The source's partition and offset travel along: the owner drops what
    it applied already when a rebalance makes the source be read and forwarded again. A large
    record travels as its validated fields (free text cut), so every envelope fits."""
    value = message.value if len(message.value) <= FORWARD_RAW_BYTES else compact_value(event)
    return (b'{"stream":%b,"topic":%b,"p":%d,"o":%d,"value":%b}'
            % (orjson.dumps(stream), orjson.dumps(message.topic), message.partition,
               message.offset, value))


def forward_records(entries: list[bytes]) -> list[list[bytes]]:
    """A partition's envelopes in as few re-keying records as fit ``FORWARD_RECORD_BYTES``
    (a JSON list each, not one record per event: each Kafka record costs the producer and the
    consumer far more than its bytes)."""
    records: list[list[bytes]] = []
    chunk: list[bytes] = []
    size = 0
    for entry in entries:
        if chunk and size + len(entry) > FORWARD_RECORD_BYTES:
            records.append(chunk)
            chunk, size = [], 0
        chunk.append(entry)
        size += len(entry) + 1
    records.append(chunk)
    return records


def forward_record_value(entries: list[bytes]) -> bytes:
    return b"[" + b",".join(entries) + b"]"


def decode_rekeyed(batch: Sequence[Any], newest: dict[tuple[str, int], float] | None = None
                   ) -> tuple[Scored, list[DeadLetter]]:
    """Decode a batch of the re-keying topic: its events per stream, and the dead letters of
    what could not be read. ``newest``, when given, gets per (topic, partition) read the latest
    event time."""
    by_stream: Scored = {}
    letters: list[DeadLetter] = []
    for item in batch:
        message = item.message
        try:
            envelopes = orjson.loads(message.value)
            if not isinstance(envelopes, list):
                envelopes = [envelopes]
            entries = [(e["stream"], e["topic"], e.get("p"), e.get("o"), e["value"])
                       for e in envelopes]
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            letters.append(dead_letter(
                message.topic, message.value, f"bad repartition envelope: {exc}",
                key=message.key, partition=message.partition, offset=message.offset,
                reason_class="envelope"))
            continue
        for stream, topic, partition, offset, value in entries:
            # Event time was checked when the event came in (before it was re-keyed).
            decoded = decode(str(topic), value, partition=partition, offset=offset)
            if isinstance(decoded, DeadLetter):
                letters.append(decoded)
                continue
            events, origins = by_stream.setdefault(str(stream), ([], []))
            events.append(decoded)
            if newest is not None:
                read_from = (message.topic, message.partition)
                if decoded.ts > newest.get(read_from, 0.0):
                    newest[read_from] = decoded.ts
            origins.append((topic, partition, offset)
                           if isinstance(partition, int) and isinstance(offset, int) else None)
    return by_stream, letters


def batch_dead_letters(batch: Sequence[Any], exc: BaseException) -> list[DeadLetter]:
    """Every record of a batch that could not be scored, with the reason."""
    letters = []
    for item in batch:
        message = item.message
        letters.append(dead_letter(
            message.topic, message.value or b"",
            f"its batch could not be scored: {describe(exc)}", key=message.key,
            partition=message.partition, offset=message.offset, reason_class="scoring"))
    return letters
