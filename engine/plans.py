"""Which rules an event reaches: routes by stream, plans indexed by a guard field, steps.

A *route* is one stream of one topic (the topic itself, or the topic re-keyed by a field) with the
rules that read it. Its *plan* for an event lists the rules the event may concern — indexed by the
field most of the route's ``where`` conditions pin to string literals — each as a *step* holding
what scoring it needs, looked up once when the rules are loaded. The core runs steps; this module
only decides which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.rule_files.loader import CompiledRule
from models.base import Reading, WarningModel
from models.expr import Expression
from topics.codec import Event
from topics.registry import EVENT_TOPICS


def stream_of(rule: CompiledRule, topic: str) -> str:
    """The stream a rule reads from ``topic``: the topic itself when keyed by the topic's key,
    else ``by:<field>`` — shared by every topic and rule keyed by that field, which is what lets
    a correlation see events of several topics under one key."""
    if len(rule.spec.sources) == 1 and rule.key_field == EVENT_TOPICS[topic].key_field:
        return topic
    return f"by:{rule.key_field}"


@dataclass(slots=True, frozen=True)
class Step:
    """One rule of a plan, with what scoring it needs looked up once, when it is loaded."""

    rule: CompiledRule
    slot: int
    """Index of its ``where`` in the plan's ``conditions``, or -1 for none."""
    state_key: str
    score_one: Callable[[Any, Event], Reading]
    learn_one: Callable[[Any, Event], None] | None
    """None when its model learns nothing from events (threshold, lookup, text, joined)."""
    context_fields: tuple[str, ...]
    timed: bool
    """The rule has deadlines (its model's, or its alert's own ``clear_for`` or escalation)."""

    @classmethod
    def of(cls, rule: CompiledRule, slot: int) -> Step:
        model = rule.model
        learns = type(model).learn_one is not WarningModel.learn_one
        return cls(rule, slot, rule.state_key, model.score_one,
                   model.learn_one if learns else None, rule.context_fields,
                   model.uses_deadlines or rule.lifecycle_timers)


@dataclass(slots=True, frozen=True)
class Plan:
    """The rules an event of a route may reach, each ``where`` among them evaluated once per
    event however many rules share it (a facility's thirteen rules have two)."""

    conditions: tuple[Expression, ...]
    steps: tuple[Step, ...]
    """In the route's rule order: alerts come out in that order."""
    unconditional: bool
    """Some rule has no ``where``: every event of the route reaches it."""

    @classmethod
    def of(cls, rules: Iterable[CompiledRule]) -> Plan:
        conditions: list[Expression] = []
        slots: dict[tuple[str, str], int] = {}
        steps = []
        for rule in rules:
            slot = -1
            if rule.where is not None:
                slot = slots.get(rule.where.identity, -1)
                if slot < 0:
                    slot = slots[rule.where.identity] = len(conditions)
                    conditions.append(rule.where)
            steps.append(Step.of(rule, slot))
        return cls(tuple(conditions), tuple(steps), any(step.slot < 0 for step in steps))

    def held(self, data: dict[str, Any]) -> list[bool] | None:
        """Which conditions hold for the event; None when no rule of the plan can see it."""
        held = [c.evaluate(data) is True for c in self.conditions]
        return held if self.unconditional or True in held else None

    def sees(self, data: dict[str, Any]) -> bool:
        """Whether ``held`` would not be None, evaluating conditions only until one holds (none
        when a rule has no ``where``): for re-keying, which needs no more than that."""
        return self.unconditional or any(c.evaluate(data) is True for c in self.conditions)


NO_PLAN = Plan((), (), False)


@dataclass(slots=True)
class Route:
    stream: str
    key_field: str
    by_topic_key: bool
    rules: list[CompiledRule]
    guard_field: str | None = None
    """The field most of the route's ``where`` conditions pin to string literals (see
    ``models.fastcel.guard_of``): an event then reaches only the rules its value allows."""
    everything: Plan = NO_PLAN
    by_value: dict[str, Plan] = field(default_factory=dict)
    unguarded: Plan = NO_PLAN
    """The rules any value of ``guard_field`` may concern (for values no rule names)."""

    def index(self) -> None:
        self.everything = Plan.of(self.rules)
        self._index_by_guard()

    def _index_by_guard(self) -> None:
        guards = [r.where.guard for r in self.rules if r.where is not None and r.where.guard]
        if not guards:
            return
        counts: dict[str, int] = {}
        for name, _ in guards:
            counts[name] = counts.get(name, 0) + 1
        self.guard_field = max(counts, key=lambda name: counts[name])
        allowed = {id(r): r.where.guard[1] for r in self.rules if r.where is not None
                   and r.where.guard and r.where.guard[0] == self.guard_field}
        values = {v for values in allowed.values() for v in values}
        # Each plan keeps the route's rule order: alerts come out as without the index.
        self.by_value = {v: Plan.of(r for r in self.rules
                                     if id(r) not in allowed or v in allowed[id(r)])
                         for v in values}
        self.unguarded = Plan.of(r for r in self.rules if id(r) not in allowed)

    def plan_for(self, event: Event) -> Plan:
        if self.guard_field is None:
            return self.everything
        value = event.data.get(self.guard_field)
        if type(value) is not str:
            return self.unguarded
        return self.by_value.get(value, self.unguarded)


def route_key(route: Route, event: Event) -> str | None:
    if route.by_topic_key:
        return event.key
    value = event.data.get(route.key_field)
    return None if value is None else str(value)
