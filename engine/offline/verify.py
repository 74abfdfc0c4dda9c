"""Account for every record of a run through the real broker, against replay as the answer.

Modelled on the verifier of Kafka Streams' exactly-once system test: after a run (with faults or
without), given the events produced (each with the partition and offset Kafka gave it), the
records the worker published on ``alerts`` and ``events.deadletter``, and the offsets its
consumer group committed, it says

- per input event: dead-lettered (a dead letter names its topic, partition and offset, with a
  reason), scored (the group committed past it and it was not dead-lettered: the worker commits
  an offset only once the state and outputs of the events before it are in Kafka), or lost
  (neither). Processes' counters are no basis for this: a ``kill -9`` takes them with it, and a
  restarted worker counts the re-read events again. An event ``yujing replay`` rejects (a bad
  line) must be dead-lettered; one the worker dead-lettered that replay scored is listed. Offsets
  the consumer jumped over (the worker logs ``events not scored``) are lost whatever was
  committed;
- per alert, compared by ``(alert_id, state)`` with what replay of the same events publishes:
  missing, extra, and duplicates (a record of a pair already seen: at-least-once delivery
  repeats an alert with its own id, never under a new one). Rules decided at events are judged
  apart from rules with wall-clock deadlines (absence, deadline, windows emptied by time,
  escalation by time, ``clear_for``): replay fires those in event time, the worker when its
  timer runs, so they may differ without a fault.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from pydantic import BaseModel, Field

from engine.offline.replay import ReplayResult, replay
from engine.rule_files.loader import CompiledRule

Pair = tuple[str, str]
"""(alert_id, state)"""
SkippedRange = tuple[str, int, int, int]
"""(topic, partition, first offset, last offset) a worker jumped over"""
_SKIPPED = re.compile(r"(\S+)\[(\d+)\]: offsets (\d+)-(\d+) are not in the log any more")


def skipped_ranges(log: str) -> list[SkippedRange]:
    """The offset ranges a worker's log says its consumer jumped over without scoring them."""
    return [(m[1], int(m[2]), int(m[3]), int(m[4])) for m in _SKIPPED.finditer(log)]


class ProducedEvent(BaseModel):
    """One input record as produced: its envelope (``yujing simulate --out``) and position."""

    topic: str
    key: str | None
    value: dict[str, Any]
    partition: int
    offset: int

    def envelope_line(self) -> bytes:
        return orjson.dumps({"topic": self.topic, "key": self.key, "value": self.value})


class AlertComparison(BaseModel):
    """Published alerts against replay's, for one group of rules."""

    expected: int = 0
    """Distinct (alert_id, state) replay publishes."""
    seen: int = 0
    """Distinct (alert_id, state) the worker published."""
    missing: int = 0
    extra: int = 0
    duplicates: int = 0
    """Records of a pair already published (same alert_id and state)."""
    reissued: int = 0
    """Extra pairs whose model, key and state replay publishes under another alert_id: an
    episode repeated under a new id, which a consumer could not drop as a duplicate."""
    missing_examples: list[str] = Field(default_factory=list)
    extra_examples: list[str] = Field(default_factory=list)


class VerifyReport(BaseModel):
    events_in: int
    scored: int
    dead_lettered: int
    lost: int
    """Input events neither committed past nor dead-lettered, or jumped over by the consumer."""
    skipped_by_consumer: int = 0
    """Offsets the workers logged as jumped over (counted in ``lost``)."""
    dead_letter_reasons: dict[str, int] = Field(default_factory=dict)
    """Dead-lettered input events by reason class."""
    dead_letters_replay_scored: int = 0
    """Events the worker dead-lettered that replay scored (counted in dead_lettered)."""
    rule_failures: int = 0
    """Dead letters of rules that failed on an event the other rules scored."""
    rekeyed_pending: int = 0
    """Records of the re-keying topic the group had not committed (their events not scored)."""
    lost_examples: list[str] = Field(default_factory=list)
    event_rules: AlertComparison
    timer_rules: AlertComparison
    alerts_published: int
    """Alert records read (duplicates included)."""

    def summary(self) -> str:
        e, t = self.event_rules, self.timer_rules
        return (f"{self.events_in} events in: {self.scored} scored, {self.dead_lettered} "
                f"dead-lettered, {self.lost} lost ({self.skipped_by_consumer} skipped by the "
                f"consumer, {self.rekeyed_pending} re-keyed records pending); "
                f"{self.alerts_published} alert records; rules decided at events: "
                f"{e.expected} expected, {e.seen} seen, {e.missing} missing, {e.extra} extra "
                f"({e.reissued} under a new id), {e.duplicates} duplicates; timer rules: "
                f"{t.expected} expected, {t.seen} seen, "
                f"{t.missing} missing, {t.extra} extra, {t.duplicates} duplicates")


def timer_rule_ids(rules: Iterable[CompiledRule]) -> set[str]:
    """Rules whose alerts can change on a wall-clock deadline as well as at events."""
    return {r.id for r in rules if r.model.uses_deadlines or r.lifecycle_timers}


def _describe(record: Mapping[str, Any]) -> str:
    return (f"{record.get('model_id')} key {record.get('key')} {record.get('state')} "
            f"{record.get('alert_id')} first_ts {record.get('first_ts')}")


def compare_alerts(expected: Iterable[Mapping[str, Any]], published: Iterable[Mapping[str, Any]],
                   examples: int = 10) -> AlertComparison:
    expected_pairs = {(a["alert_id"], a["state"]): a for a in expected}
    counts: Counter[Pair] = Counter()
    info: dict[Pair, Mapping[str, Any]] = {}
    for record in published:
        pair = (record["alert_id"], record["state"])
        counts[pair] += 1
        info.setdefault(pair, record)
    missing = sorted(set(expected_pairs) - set(counts))
    extra = sorted(set(counts) - set(expected_pairs))
    episodes = {(a["model_id"], a["key"], a["state"]) for a in expected_pairs.values()}
    reissued = sum(1 for p in extra
                   if (info[p].get("model_id"), info[p].get("key"), p[1]) in episodes)
    return AlertComparison(
        expected=len(expected_pairs), seen=len(counts), missing=len(missing),
        extra=len(extra), duplicates=sum(n - 1 for n in counts.values()), reissued=reissued,
        missing_examples=[_describe(expected_pairs[p]) for p in missing[:examples]],
        extra_examples=[_describe(info[p]) for p in extra[:examples]])


def verify(events: list[ProducedEvent], alerts: list[dict[str, Any]],
           dead_letters: list[dict[str, Any]], committed: Mapping[tuple[str, int], int],
           rules: list[CompiledRule], skipped: Iterable[SkippedRange] = (),
           rekeyed_pending: int = 0, until: float | None = None,
           expected: ReplayResult | None = None, examples: int = 10) -> VerifyReport:
    """Account for ``events`` (in the order produced) and compare ``alerts`` with replay's.

    ``alerts`` and ``dead_letters`` are the records of the run (read from the topics after their
    end offsets at its start); ``committed`` the group's next offset to read per (topic,
    partition); ``skipped_by_consumer`` the offsets its workers logged as jumped over.
    ``until``: the wall-clock time the run ended, to which replay advances its clock at the end
    (the deadlines the workers' timers found due by then). ``expected``: replay's result over
    ``events``, if already computed.
    """
    if expected is None:
        expected = replay((e.envelope_line() for e in events), rules, until=until)
    bad_lines = {b.line for b in expected.bad_lines}  # replay numbers lines from 1

    letters: dict[tuple[str, int, int], dict[str, Any]] = {}
    rule_failures = 0
    for letter in dead_letters:
        if letter.get("reason_class") == "scoring":
            rule_failures += 1
            continue
        where = (letter.get("source_topic"), letter.get("partition"), letter.get("offset"))
        if isinstance(where[1], int) and isinstance(where[2], int) and letter.get("reason"):
            letters[(str(where[0]), where[1], where[2])] = letter

    jumped = {(topic, partition, offset) for topic, partition, first, last in skipped
              for offset in range(first, last + 1)}
    scored = lettered = lost = replay_scored = 0
    reasons: Counter[str] = Counter()
    lost_examples: list[str] = []
    for line, event in enumerate(events, start=1):
        letter = letters.get((event.topic, event.partition, event.offset))
        if letter is not None:
            lettered += 1
            reasons[str(letter.get("reason_class"))] += 1
            replay_scored += line not in bad_lines
            continue
        passed = committed.get((event.topic, event.partition), 0) > event.offset
        over = (event.topic, event.partition, event.offset) in jumped
        if passed and not over and line not in bad_lines:
            scored += 1
            continue
        lost += 1
        if len(lost_examples) < examples:
            why = ("jumped over by the consumer" if over else "offset not committed"
                   if not passed else "replay rejects it and no dead letter")
            lost_examples.append(f"{event.topic}[{event.partition}]@{event.offset}: {why}")

    timers = timer_rule_ids(rules)
    replayed = [a.model_dump() for a in expected.alerts]
    return VerifyReport(
        events_in=len(events), scored=scored, dead_lettered=lettered, lost=lost,
        skipped_by_consumer=len(jumped), dead_letter_reasons=dict(reasons),
        dead_letters_replay_scored=replay_scored, rule_failures=rule_failures,
        rekeyed_pending=rekeyed_pending, lost_examples=lost_examples,
        event_rules=compare_alerts([a for a in replayed if a["model_id"] not in timers],
                                   [a for a in alerts if a.get("model_id") not in timers],
                                   examples),
        timer_rules=compare_alerts([a for a in replayed if a["model_id"] in timers],
                                   [a for a in alerts if a.get("model_id") in timers],
                                   examples),
        alerts_published=len(alerts))
