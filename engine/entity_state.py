"""The state the scoring core keeps per *entity*: one source stream (a topic, or a topic
re-keyed by another field) and one key value, with the state of every rule watching it.

Pickled into the worker's changelog: the classes are ``pickled_by_position`` (add a field only
at the end, with a default), and an entity written by a version before ``EntityState`` (a dict
of rule states, with the origin marks under ``"~origins"``) still loads: ``as_entity_state``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.decision import DecisionState
from models.base import pickled_by_position

Origin = tuple[str, int, int]
"""(source topic, partition, offset) of an event."""

LEGACY_ORIGINS = "~origins"
"""Where an entity pickled as a dict kept its origin marks (a ``RuleState`` whose model was
the marks)."""


@pickled_by_position
@dataclass(slots=True)
class RuleState:
    model: Any
    decision: DecisionState = field(default_factory=DecisionState)
    seen: float = float("-inf")
    """Event time of the newest event this rule scored for the key (for idle expiry)."""
    context: dict[str, Any] | None = None
    """Fields of the latest event the summary needs, for alerts raised by a deadline."""


@pickled_by_position
@dataclass(slots=True)
class EntityState(Mapping[str, RuleState]):
    """The state of every rule watching one key of one stream, and the events applied to it.

    Read as a mapping, it is its rule states by ``state_key`` (the origin marks are apart)."""

    rules: dict[str, RuleState] = field(default_factory=dict)
    """By rule ``state_key``."""
    origins: dict[tuple[str, int], int] = field(default_factory=dict)
    """Per source (topic, partition), the offset of the newest event applied. Kafka delivers at
    least once: after a rebalance or a crash the new owner reads again from the committed
    offset, which can be behind the state it recovers (and a re-keyed event is forwarded
    again). Kept with the state those events changed, these marks drop exactly the repeats, so
    a window does not count an event twice and an old reading does not restart a ``for``
    clock. (A department topic deleted and created again restarts its offsets: its consumers'
    state must start afresh too, under a new app id.)"""

    def __getitem__(self, state_key: str) -> RuleState:
        return self.rules[state_key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def repeated(self, origin: Origin) -> bool:
        """True if this entity already applied the event at ``origin``; else mark it
        applied."""
        topic, partition, offset = origin
        source = (topic, partition)
        if self.origins.get(source, -1) >= offset:
            return True
        self.origins[source] = offset
        return False


def as_entity_state(stored: EntityState | dict[str, RuleState]) -> EntityState:
    """An entity as a store holds it, written by this version or by one that kept it as a dict
    of rule states (its rule states are taken over, not copied)."""
    if type(stored) is EntityState:
        return stored
    assert isinstance(stored, dict)
    rules = dict(stored)
    marks = rules.pop(LEGACY_ORIGINS, None)
    return EntityState(rules, {} if marks is None else marks.model)
