"""Replay: run the scoring core over a JSONL file of events, in event time, with no broker.

Each line is an envelope ``{"topic": ..., "key": ..., "value": {...}}`` (what ``yujing simulate``
writes), or with ``topic`` given, a bare event of that topic. Lines are taken in file order and the
clock follows the newest event time seen, so deadlines fire as they would have live. A bad line is
reported with its number and skipped: one the worker would dead-letter (not an event of its topic,
or an event time outside the bounds: ahead of the wall clock, or older than the horizon before the
newest event seen), and one a rule failed on (the other rules scored it). Events a rule could
not use (late, or a value it skips) are counted by rule, and so are those it saw but could not
judge (a field its condition needs was missing).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from engine.core import MemoryStore, ScoringCore
from engine.reference_records import apply_reference, track_lookup_event
from engine.rule_files.loader import CompiledRule
from models.refdata import ReferenceData
from topics.codec import Event, EventTimePolicy, dead_letter, decode
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
    """Lines that were events within the time bounds (scored)."""
    alerts: list[Alert] = field(default_factory=list)
    bad_lines: list[BadLine] = field(default_factory=list)
    failures: list[BadLine] = field(default_factory=list)
    """Events a rule failed on (the other rules scored them)."""
    unused: dict[tuple[str, str], int] = field(default_factory=dict)
    """Events each rule could not use, by (rule id, ``late`` or the reason it skipped them)."""
    undecided: dict[str, int] = field(default_factory=dict)
    """Events each rule saw but could not judge (a field its condition needs was missing), by
    rule id: no verdict, so they neither started, kept nor cleared an alert."""

    @property
    def late(self) -> int:
        return sum(n for (_, cause), n in self.unused.items() if cause == "late")

    @property
    def skipped(self) -> int:
        return sum(n for (_, cause), n in self.unused.items() if cause != "late")

    def summary(self, rules: int) -> str:
        return (f"{self.events} events, {len(self.alerts)} alerts, {len(self.bad_lines)} bad "
                f"lines, {self.late} late and {self.skipped} skipped readings, "
                f"{sum(self.undecided.values())} undecided, {len(self.failures)} rule "
                f"failures, {rules} rules")


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
           core: ScoringCore | None = None, time_policy: EventTimePolicy | None = None,
           now: float | None = None) -> ReplayResult:
    """Score every event in ``lines``; ``until`` advances the clock at the end (epoch s).

    ``reference`` is the data the rules' models consult (by default the one they were loaded
    with); replayed reference records and waybills update it as they come. ``time_policy``
    bounds event times (the worker's by default) against the wall clock ``now``.
    """
    if not rules:
        raise ValueError("no rules to replay the events against")
    result = ReplayResult()
    if reference is None:
        reference = rules[0].model.env.reference
    core = core or ScoringCore(rules, MemoryStore())
    policy = time_policy or EventTimePolicy()
    wall = time.time() if now is None else now
    clock = float("-inf")
    bounds = policy.around(wall, newest=clock)  # no horizon before the first event
    for number, item in read_jsonl(lines, topic):
        if isinstance(item, DeadLetter):
            result.bad_lines.append(BadLine(number, f"{item.source_topic}: {item.reason}"))
            continue
        if isinstance(item, ReferenceUpdate):
            problem = apply_reference(reference, item.topic, item.key, item.value)
            if problem:
                result.bad_lines.append(BadLine(number, problem))
            continue
        problem = bounds.problem(item.ts)
        if problem is not None:
            result.bad_lines.append(BadLine(number, f"{item.topic}: {problem}"))
            continue
        result.events += 1
        track_lookup_event(reference, item)
        if item.ts > clock:
            clock = item.ts
            bounds = policy.around(wall, newest=clock)
            result.alerts += core.advance(clock)
        result.alerts += core.process((item,))
        result.failures += [BadLine(number, str(f)) for f in core.take_failures()]
    if until is not None:
        result.alerts += core.advance(until)
    result.failures += [BadLine(0, str(f)) for f in core.take_failures()]
    result.unused = dict(core.unused)
    result.undecided = dict(core.undecided)
    return result


def replay_file(path: Path, rules: list[CompiledRule], topic: str | None = None,
                time_policy: EventTimePolicy | None = None) -> ReplayResult:
    with path.open("rb") as handle:
        return replay(handle, rules, topic, time_policy=time_policy)
