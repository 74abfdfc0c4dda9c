"""What the console shows, kept from the topics it reads, and the changes a page has missed.

The console reads the life topics (``alerts``, ``incidents``, ``dispatch.orders``,
``dispatch.feedback``), the scorecards and the silences from their start, as tracking does
(``LifeRecords``), and numbers every change by where its record is in Kafka: (topic,
partition, offset). A page holds a **cursor** — for each partition, the offset of the last
record it has seen — and after a disconnect asks for what came after it. Because the cursor
names Kafka offsets, not a counter of this process, a console restarted from the topics gives
the same answer: no gap, no duplicate (``changes_since``). Only the latest ``kept`` changes are
held for that; a page further behind is told to take a new snapshot.

>>> feed = Feed()
>>> feed.add("dispatch.feedback", 0, 7, b"O1", b'{"order_id": "O1", "status": "acknowledged",'
...          b' "department": "fire", "at": 60}').kind
'feedback'
>>> feed.cursor_text()
'dispatch.feedback:0:7'
>>> [c.offset for c in feed.changes_since(parse_cursor("dispatch.feedback:0:6"))]
[7]
>>> feed.changes_since(parse_cursor("dispatch.feedback:0:7"))
[]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from engine.tracking.store import LifeRecords, alert_record_key, parse_record
from topics.records import Alert, Feedback, Incident, Scorecard, Silence, WorkOrder
from topics.registry import ALERTS, FEEDBACK, INCIDENTS, ORDERS, SCORECARDS, SILENCES

CONSOLE_TOPICS = (ALERTS.name, INCIDENTS.name, ORDERS.name, FEEDBACK.name, SCORECARDS.name,
                  SILENCES.name)
KEPT_CHANGES = 50_000
"""Changes held for pages catching up after a disconnect (minutes of a busy city)."""
SCORECARD_POINTS = 500
"""Versions of each scorecard kept for its chart over time."""

Position = tuple[str, int]
Cursor = dict[Position, int]
KINDS = {ALERTS.name: "alert", INCIDENTS.name: "incident", ORDERS.name: "order",
         FEEDBACK.name: "feedback", SCORECARDS.name: "scorecard", SILENCES.name: "silence"}


@dataclass(frozen=True, slots=True)
class Change:
    """One record the console took: where it was, what kind, and the record (None: deleted)."""

    topic: str
    partition: int
    offset: int
    kind: str
    key: str | None
    record: Any

    def as_json(self) -> dict[str, Any]:
        record = self.record.model_dump(mode="json") if self.record is not None else None
        return {"kind": self.kind, "key": self.key, "record": record,
                "position": f"{self.topic}:{self.partition}:{self.offset}"}


def parse_cursor(text: str | None) -> Cursor | None:
    """``topic:partition:offset,…`` as a cursor; None when ``text`` is empty or not one."""
    if not text:
        return None
    cursor: Cursor = {}
    try:
        for part in text.split(","):
            topic, partition, offset = part.rsplit(":", 2)
            if topic not in KINDS:
                return None
            cursor[(topic, int(partition))] = int(offset)
    except ValueError:
        return None
    return cursor


def cursor_text(cursor: Mapping[Position, int]) -> str:
    return ",".join(f"{t}:{p}:{o}" for (t, p), o in sorted(cursor.items()))


@dataclass
class Feed:
    """The console's records and its recent changes (see the module doc)."""

    kept: int = KEPT_CHANGES
    life: LifeRecords = field(default_factory=LifeRecords)
    silences: dict[str, Silence] = field(default_factory=dict)
    scorecards: dict[str, deque[Scorecard]] = field(default_factory=dict)
    latest: dict[str, Alert] = field(default_factory=dict)
    """Each alert's latest state change, the most recently changed last."""
    positions: Cursor = field(default_factory=dict)
    """Per partition, the offset of the last record taken."""
    recent: deque[Change] = field(default_factory=deque)
    forgotten: Cursor = field(default_factory=dict)
    """Per partition, the offset of the newest change no longer held (pages behind it must
    take a snapshot)."""

    def add(self, topic: str, partition: int, offset: int, key: bytes | None,
            value: bytes | None) -> Change | None:
        """Take one record; the change it makes (None: refused or already taken)."""
        position = (topic, partition)
        if offset <= self.positions.get(position, -1):
            return None  # read again after a reconnect: already taken
        self.positions[position] = offset
        name = key.decode("utf-8", errors="replace") if key else None
        record = self._take(topic, name, key, value)
        if record is False:
            return None
        change = Change(topic, partition, offset, KINDS[topic], name, record)
        self.recent.append(change)
        while len(self.recent) > self.kept:
            old = self.recent.popleft()
            self.forgotten[(old.topic, old.partition)] = old.offset
        return change

    def _take(self, topic: str, name: str | None, key: bytes | None,
              value: bytes | None) -> Any:
        if topic == SILENCES.name:
            if not value:
                self.silences.pop(name or "", None)
                return None
            silence = _parsed(Silence, value)
            if not isinstance(silence, Silence):
                return False
            self.silences[silence.silence_id] = silence
            return silence
        if topic == SCORECARDS.name:
            card = _parsed(Scorecard, value)
            if not isinstance(card, Scorecard):
                return False
            points = self.scorecards.setdefault(f"{card.scope}:{card.name}",
                                                deque(maxlen=SCORECARD_POINTS))
            points.append(card)
            return card
        if not value:  # a tombstone of a compacted topic
            return False if self.life.add(topic, key, value) is not None else None
        record = parse_record(topic, value)  # once: LifeRecords takes it parsed
        if isinstance(record, str):
            return False
        if isinstance(record, Alert):
            new = alert_record_key(record) not in self.life.alerts
            self.life.add_alert(record)
            if new and alert_record_key(record) in self.life.alerts:
                # A redelivered copy of an earlier state does not move the alert back.
                self.latest.pop(record.alert_id, None)
                self.latest[record.alert_id] = record
        else:
            self.life.add_record(record)
        return record

    def cursor_text(self) -> str:
        return cursor_text(self.positions)

    def changes_since(self, cursor: Cursor) -> list[Change] | None:
        """The changes after ``cursor``, in the order taken; None when some of them are no
        longer held (take a snapshot instead)."""
        for position, offset in self.forgotten.items():
            if cursor.get(position, -1) < offset:
                return None
        return [c for c in self.recent
                if c.offset > cursor.get((c.topic, c.partition), -1)]

    # -- what a snapshot holds ----------------------------------------------------------------

    def latest_alerts(self) -> dict[str, Alert]:
        """Each alert's latest record (kept as records come: the stream asks for it at every
        incident change)."""
        return self.latest

    def orders(self) -> dict[str, WorkOrder]:
        return self.life.orders

    def incidents(self) -> dict[str, Incident]:
        return self.life.incidents

    def feedback(self) -> list[Feedback]:
        return self.life.feedback

    def latest_scorecards(self) -> list[Scorecard]:
        return [points[-1] for points in self.scorecards.values() if points]


def _parsed(schema: type[Silence] | type[Scorecard], value: bytes | None
            ) -> Silence | Scorecard | None:
    """The record, or None for one that is not (someone else's output: refused, not raised)."""
    if not value:
        return None
    try:
        return schema.model_validate(orjson.loads(value))
    except (orjson.JSONDecodeError, ValidationError):
        return None


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default)


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(type(value).__name__)
