"""Reference data the models consult: zones, routes, lists, capacities, permits.

Held as named tables of ``key -> record``. The worker fills them from the compacted
``reference.*`` topics, replay and rule tests from files or envelopes; models only read them.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

Record = Mapping[str, Any]


VERSIONS_KEPT = 8
"""Versions of a timed record kept per key: enough for a backlog of hours of a waybill's
changes to be judged against the version then in force, bounded for ever-running workers."""

Version = tuple[float, Record | None]
"""(event time from which it is in force, the record — None: deleted from then on)."""


class ReferenceData:
    """Named tables of reference records.

    A record put without a time (zones, lists, capacities) is in force whenever asked. A record
    put with its event time (``at``: a waybill, from its own topic) is in force from then until
    its next version, so an event is judged against the record as it stood at the event's time
    — whether the event is scored live or read from a backlog after the newer versions
    (``get(..., at=event.ts)``).

    >>> ref = ReferenceData()
    >>> ref.put("reference.blacklist", "C1", {"reason": "fraud"})
    >>> ref.get("reference.blacklist", "C1")["reason"], ref.get("reference.blacklist", "C2")
    ('fraud', None)
    >>> ref.put("reference.blacklist", "C1", None)   # a tombstone deletes
    >>> ref.get("reference.blacklist", "C1") is None
    True
    >>> ref.put("waybills", "W1", {"status": "issued"}, at=100.0)
    >>> ref.put("waybills", "W1", {"status": "closed"}, at=200.0)
    >>> [ref.get("waybills", "W1", at=t) for t in (50.0, 150.0, 250.0)]
    [None, {'status': 'issued'}, {'status': 'closed'}]
    >>> ref.get("waybills", "W1")                     # no time: the latest
    {'status': 'closed'}
    """

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Record]] = {}
        self._versions: dict[str, dict[str, list[Version]]] = {}
        """Timed tables' versions per key, oldest first (their latest is in ``_tables`` too)."""
        self.version = 0
        """Bumped on every change."""
        self._table_versions: dict[str, int] = {}

    def table_version(self, table: str) -> int:
        """Bumped on every change of ``table``, so models may cache what they derive from it
        (zones change rarely; the waybills kept as reference change with every waybill event)."""
        return self._table_versions.get(table, 0)

    def get(self, table: str, key: str, at: float | None = None) -> Record | None:
        """The record of ``key``: the latest, or the version in force at event time ``at``."""
        if at is not None:
            versions = self._versions.get(table, {}).get(key)
            if versions is not None:
                return _in_force(versions, at)
        return self._tables.get(table, {}).get(key)

    def items(self, table: str, at: float | None = None) -> Iterator[tuple[str, Record]]:
        """Every record of ``table``: the latest, or those in force at event time ``at``."""
        timed = self._versions.get(table) if at is not None else None
        if not timed:
            yield from self._tables.get(table, {}).items()
            return
        for key, record in self._tables.get(table, {}).items():
            versions = timed.get(key)
            if versions is None:
                yield key, record
        for key, versions in timed.items():
            found = _in_force(versions, at)  # type: ignore[arg-type]
            if found is not None:
                yield key, found

    def put(self, table: str, key: str, record: Record | None, at: float | None = None
            ) -> None:
        """Store (None: delete) ``key``'s record; with ``at``, as a version in force from
        that event time (a version older than the newest kept slots in by its time)."""
        rows = self._tables.setdefault(table, {})
        if at is None:
            self._versions.get(table, {}).pop(key, None)
        else:
            versions = self._versions.setdefault(table, {}).setdefault(key, [])
            where = bisect_right(versions, at, key=lambda v: v[0])
            versions.insert(where, (at, record))
            if len(versions) > VERSIONS_KEPT:
                # The oldest kept version stands for everything before it: a key with a
                # history existed, and a backlog older than that is judged against it.
                del versions[:-VERSIONS_KEPT]
                versions[0] = (-math.inf, versions[0][1])
            record = versions[-1][1]  # the latest stays the one asked for without a time
        if record is None:
            rows.pop(key, None)
        else:
            rows[key] = record
        self.version += 1
        self._table_versions[table] = self._table_versions.get(table, 0) + 1

    def tables(self) -> list[str]:
        return sorted(self._tables)

    def copy(self) -> ReferenceData:
        other = ReferenceData()
        other._tables = {name: dict(rows) for name, rows in self._tables.items()}
        other._versions = {name: {k: list(v) for k, v in rows.items()}
                           for name, rows in self._versions.items()}
        other.version = self.version
        other._table_versions = dict(self._table_versions)
        return other


def _in_force(versions: list[Version], at: float) -> Record | None:
    where = bisect_right(versions, at, key=lambda v: v[0])
    return versions[where - 1][1] if where else None


@dataclass(frozen=True, slots=True)
class ModelEnv:
    """What a model may use beyond its parameters: named lists, macros, the reference data."""

    constants: Mapping[str, Any] = field(default_factory=dict)
    macros: Mapping[str, str] = field(default_factory=dict)
    reference: ReferenceData = field(default_factory=ReferenceData)
