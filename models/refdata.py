"""Reference data the models consult: zones, routes, lists, capacities, permits.

Held as named tables of ``key -> record``. The worker fills them from the compacted
``reference.*`` topics, replay and rule tests from files or envelopes; models only read them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

Record = Mapping[str, Any]


class ReferenceData:
    """Named tables of reference records.

    >>> ref = ReferenceData()
    >>> ref.put("reference.blacklist", "C1", {"reason": "fraud"})
    >>> ref.get("reference.blacklist", "C1")["reason"], ref.get("reference.blacklist", "C2")
    ('fraud', None)
    >>> ref.put("reference.blacklist", "C1", None)   # a tombstone deletes
    >>> ref.get("reference.blacklist", "C1") is None
    True
    """

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, Record]] = {}
        self.version = 0
        """Bumped on every change."""
        self._table_versions: dict[str, int] = {}

    def table_version(self, table: str) -> int:
        """Bumped on every change of ``table``, so models may cache what they derive from it
        (zones change rarely; the waybills kept as reference change with every waybill event)."""
        return self._table_versions.get(table, 0)

    def get(self, table: str, key: str) -> Record | None:
        return self._tables.get(table, {}).get(key)

    def items(self, table: str) -> Iterator[tuple[str, Record]]:
        yield from self._tables.get(table, {}).items()

    def put(self, table: str, key: str, record: Record | None) -> None:
        rows = self._tables.setdefault(table, {})
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
        other.version = self.version
        other._table_versions = dict(self._table_versions)
        return other


@dataclass(frozen=True, slots=True)
class ModelEnv:
    """What a model may use beyond its parameters: named lists, macros, the reference data."""

    constants: Mapping[str, Any] = field(default_factory=dict)
    macros: Mapping[str, str] = field(default_factory=dict)
    reference: ReferenceData = field(default_factory=ReferenceData)
