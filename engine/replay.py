"""Replay: run the scoring core over a JSONL file of events, in event time, with no broker.

Each line is an envelope ``{"topic": ..., "key": ..., "value": {...}}`` (what ``yujing simulate``
writes), or with ``topic`` given, a bare event of that topic. Lines are taken in file order and the
clock follows the newest event time seen, so deadlines fire as they would have live. A bad line is
reported with its number and skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from engine.core import MemoryStore, ScoringCore
from engine.loader import CompiledRule
from engine.reference import apply_reference, track_lookup_event
from models.refdata import ReferenceData
from topics.codec import Event, dead_letter, decode
from topics.records import Alert, DeadLetter
from topics.reference import REFERENCE_SCHEMAS


@dataclass(slots=True)
class BadLine:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(slots=True)
class ReplayResult:
    events: int = 0
    alerts: list[Alert] = field(default_factory=list)
    bad_lines: list[BadLine] = field(default_factory=list)


@dataclass(slots=True)
class ReferenceUpdate:
    """A replayed record of a reference topic (a zone, a list entry), or its deletion."""

    topic: str
    key: str
    value: dict[str, Any] | None


def read_jsonl(lines: Iterable[bytes], topic: str | None = None
               ) -> Iterator[tuple[int, Event | DeadLetter | ReferenceUpdate]]:
    """(line number, event, reference update or dead letter) for every non-blank line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if topic is not None:
            yield number, decode(topic, line, offset=number)
            continue
        try:
            envelope = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, dead_letter("(replay)", line, f"not JSON: {exc}", offset=number)
            continue
        if not isinstance(envelope, dict) or "topic" not in envelope or "value" not in envelope:
            yield number, dead_letter("(replay)", line, "not an envelope with 'topic' and "
                                      "'value' (use --topic for bare events)", offset=number)
            continue
        key = envelope.get("key")
        if envelope["topic"] in REFERENCE_SCHEMAS:
            yield number, ReferenceUpdate(str(envelope["topic"]), str(key), envelope["value"])
            continue
        yield number, decode(str(envelope["topic"]), envelope["value"], offset=number,
                             key=None if key is None else str(key))


def replay(lines: Iterable[bytes], rules: list[CompiledRule], topic: str | None = None,
           until: float | None = None, reference: ReferenceData | None = None,
           core: ScoringCore | None = None) -> ReplayResult:
    """Score every event in ``lines``; ``until`` advances the clock at the end (epoch s).

    ``reference`` is the data the rules' models consult (by default the one they were loaded
    with); replayed reference records and waybills update it as they come.
    """
    result = ReplayResult()
    if reference is None:
        reference = rules[0].model.env.reference if rules else ReferenceData()
    core = core or ScoringCore(rules, MemoryStore())
    clock = float("-inf")
    for number, item in read_jsonl(lines, topic):
        if isinstance(item, DeadLetter):
            result.bad_lines.append(BadLine(number, f"{item.source_topic}: {item.reason}"))
            continue
        if isinstance(item, ReferenceUpdate):
            problem = apply_reference(reference, item.topic, item.key, item.value)
            if problem:
                result.bad_lines.append(BadLine(number, problem))
            continue
        result.events += 1
        track_lookup_event(reference, item)
        if item.ts > clock:
            clock = item.ts
            result.alerts += core.advance(clock)
        result.alerts += core.process((item,))
    if until is not None:
        result.alerts += core.advance(until)
    return result


def replay_file(path: Path, rules: list[CompiledRule], topic: str | None = None
                ) -> ReplayResult:
    with path.open("rb") as handle:
        return replay(handle, rules, topic)
