"""The scoring core: events in, alerts out, state through a store. No broker, no asyncio.

Replay, rule tests, benchmarks and the Faust worker all run this same code; the worker only
feeds it batches and publishes what it returns.

State is kept per *entity*: one source stream (a topic, or a topic re-keyed by another field) and
one key value, holding the state of every rule that watches that entity. A batch loads each entity
once and saves it once, which is what keeps changelog traffic near one write per key per batch.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from engine.decision import AlertDecider, DecisionState, alert_deadline, applied_quietly
from engine.entity_state import EntityState, Origin, RuleState, as_entity_state
from engine.failures import Phase, ScoringFailure, describe, is_fatal
from engine.plans import Route, route_key, stream_of
from engine.rule_files.loader import CompiledRule
from models.base import UNDECIDED, Reading, Verdict
from topics.codec import Event
from topics.records import Alert

__all__ = ["MemoryStore", "Origin", "RuleState", "ScoringCore", "StateStore", "stream_of"]
"""``RuleState`` stays importable from here: the changelog's older pickles name it so."""


class StateStore(Protocol):
    def load(self, stream: str, key: str) -> EntityState | None: ...
    def save(self, stream: str, key: str, entity: EntityState) -> None: ...
    def delete(self, stream: str, key: str) -> None: ...
    def entities(self) -> Iterator[tuple[str, str, EntityState]]: ...


class MemoryStore:
    """A dict of entities: for replay, tests and benchmarks."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], EntityState] = {}

    def load(self, stream: str, key: str) -> EntityState | None:
        return self.data.get((stream, key))

    def save(self, stream: str, key: str, entity: EntityState) -> None:
        self.data[(stream, key)] = entity

    def delete(self, stream: str, key: str) -> None:
        self.data.pop((stream, key), None)

    def entities(self) -> Iterator[tuple[str, str, EntityState]]:
        for (stream, key), entity in self.data.items():
            yield stream, key, entity


def _model_deadline(rule: CompiledRule, state: RuleState) -> float | None:
    model = rule.model
    if not model.uses_deadlines:
        return None
    if not model.deadlines_when_idle and state.decision.pending_since is None \
            and not state.decision.firing:
        return None
    return model.next_deadline(state.model)


def _deadline(rule: CompiledRule, state: RuleState) -> float | None:
    """The earliest of the model's deadline and the alert's own (clear_for, escalation)."""
    if not rule.lifecycle_timers:
        return _model_deadline(rule, state)
    times = [t for t in (_model_deadline(rule, state), alert_deadline(rule, state.decision))
             if t is not None]
    return min(times) if times else None


def _idle(rule: CompiledRule, state: RuleState, now: float) -> bool:
    return (state.seen < now - rule.spec.state_ttl and not state.decision.firing
            and _deadline(rule, state) is None)


_LATE = Verdict.LATE
_SKIPPED = Verdict.SKIPPED
_UNDECIDED = UNDECIDED


class ScoringCore:
    """Scores batches of events against the loaded rules and fires deadlines."""

    def __init__(self, rules: Iterable[CompiledRule], store: StateStore,
                 on_unused: Callable[[CompiledRule, Reading], None] | None = None,
                 on_reading: Callable[[CompiledRule, str, float, Reading], None] | None = None,
                 ) -> None:
        self.store = store
        self.on_unused = on_unused
        """Told of every event a rule could not use: late (``Verdict.LATE``, evidence says by
        how much) or skipped (``Verdict.SKIPPED``, evidence says why)."""
        self.on_reading = on_reading
        """Told of every reading (rule, key, time, reading): for ``yujing explain``."""
        self.repeated = 0
        """(event, entity) pairs skipped so far because the entity had applied the event."""
        self.unused: dict[tuple[str, str], int] = {}
        """Events each rule could not use so far, by (rule id, ``late`` or the skip reason)."""
        self.evaluated: dict[str, int] = {}
        """Events each rule scored so far, by state key (``rules`` names them): a dict the
        worker reports once a batch, as it does ``undecided``."""
        self.undecided: dict[str, int] = {}
        """Events each rule saw but could not judge so far, by rule id: its reading was
        ``UNDECIDED`` (a field its condition needs was missing), which still counts as a HOLD.
        A dict, not a callback: the worker reports it once a batch, not once an event."""
        self.failures: list[ScoringFailure] = []
        """Rules that raised since the caller last took them (``take_failures``)."""
        self._batch: dict[tuple[str, str], EntityState] = {}
        self.decider = AlertDecider()
        """Decides every rule's alerts from the readings and deadlines routed here."""
        self._deadlines: list[tuple[float, str, str, str]] = []
        self._scheduled: dict[tuple[str, str, str], float] = {}
        self.set_rules(rules)

    def set_rules(self, rules: Iterable[CompiledRule]) -> None:
        """Replace the rule set (hot reload); state of unchanged rules carries over."""
        self.rules = {r.state_key: r for r in rules if r.spec.maturity != "disabled"}
        routes: dict[str, dict[str, Route]] = {}
        for rule in self.rules.values():
            for topic in rule.spec.sources:
                stream = stream_of(rule, topic)
                by_stream = routes.setdefault(topic, {})
                route = by_stream.get(stream)
                if route is None:
                    route = by_stream[stream] = Route(stream, rule.key_field,
                                                       stream == topic, [])
                route.rules.append(rule)
        for by_stream in routes.values():
            for route in by_stream.values():
                route.index()
        self._routes = {topic: list(streams.values()) for topic, streams in routes.items()}
        self.decider.set_rules(self.rules.values())

    @property
    def topics(self) -> list[str]:
        """Topics some rule reads."""
        return sorted(self._routes)

    @property
    def topic_keyed_streams(self) -> frozenset[str]:
        """Streams keyed by their topic's own key (all others need re-keying to scale out)."""
        return frozenset(r.stream for routes in self._routes.values() for r in routes
                         if r.by_topic_key)

    @property
    def topics_keyed_by_topic_only(self) -> frozenset[str]:
        """Topics every stream of which is keyed by the topic's own key (never re-keyed)."""
        return frozenset(topic for topic, routes in self._routes.items()
                         if all(r.by_topic_key for r in routes))

    def stream_keys(self, event: Event) -> list[tuple[str, str]]:
        """(stream, key) for every stream this event feeds: some rule of it would see it (no
        ``where``, or a ``where`` that holds), so the worker re-keys only what will be used."""
        out = []
        for route in self._routes.get(event.topic, ()):
            key = route_key(route, event)
            if key is not None and route.plan_for(event).sees(event.data):
                out.append((route.stream, key))
        return out

    def process(self, events: Iterable[Event], streams: frozenset[str] | None = None,
                origins: Sequence[Origin | None] | None = None) -> list[Alert]:
        """Score a batch of events (in the order given) and return the alerts they cause.

        ``streams`` limits scoring to those streams (the worker scores re-keyed streams apart).
        ``origins`` (one per event, from the worker; replay has none): an entity skips an
        event whose origin is not newer than the last it applied from that source partition
        (see ``EntityState.origins``).
        """
        alerts: list[Alert] = []
        # Entities of this batch, loaded once and saved at its end (inhibition reads them too).
        dirty: dict[tuple[str, str], EntityState] = {}
        self._batch = dirty
        on_reading = self.on_reading
        evaluated = self.evaluated
        decider = self.decider
        decider.start_moment()
        awaiting_inhibition = decider.awaiting_inhibition
        for i, event in enumerate(events):
            origin = None if origins is None else origins[i]
            ts, data = event.ts, event.data
            for route in self._routes.get(event.topic, ()):
                if streams is not None and route.stream not in streams:
                    continue
                plan = route.plan_for(event)
                if not plan.steps:
                    continue
                key = route_key(route, event)
                if key is None:
                    continue
                held = plan.held(data)
                if held is None:
                    continue  # no rule of the route sees this event: its entity is not touched
                ident = (route.stream, key)
                entity = dirty.get(ident)
                if entity is None:
                    entity = self._load(route.stream, key)
                    if entity is None:
                        entity = EntityState()
                    dirty[ident] = entity
                if origin is not None and entity.repeated(origin):
                    self.repeated += 1
                    continue
                rule_states = entity.rules
                # One event through each rule whose ``where`` holds for it (inline: this is
                # the loop every (event, rule) pair goes through).
                for step in plan.steps:
                    slot = step.slot
                    if slot >= 0 and not held[slot]:
                        continue
                    state_key = step.state_key
                    evaluated[state_key] = evaluated.get(state_key, 0) + 1
                    state = rule_states.get(state_key)
                    if state is None:
                        state = rule_states[state_key] = RuleState(
                            step.rule.model.new_state())
                    try:
                        reading = step.score_one(state.model, event)
                        verdict = reading.verdict
                        if verdict is _LATE or verdict is _SKIPPED:
                            self._unused(step.rule, reading)
                            continue
                        if reading is _UNDECIDED:  # counted, then taken as the HOLD it is
                            rule_id = step.rule.spec.id
                            self.undecided[rule_id] = self.undecided.get(rule_id, 0) + 1
                        if step.learn_one is not None:
                            try:
                                step.learn_one(state.model, event)
                            except BaseException as exc:
                                if is_fatal(exc):
                                    raise
                                # Half-learned state is not to be trusted: start afresh.
                                state.model = step.rule.model.new_state()
                                self._failed(step.rule, key, "learn", exc, event, i)
                                continue
                        if ts >= state.seen:
                            # The context a deadline's alert shows is that of the newest event,
                            # not the last to arrive (events of one key can come out of order
                            # through different partitions).
                            state.seen = ts
                            if step.context_fields:
                                state.context = {f: data.get(f) for f in step.context_fields}
                        at = reading.at
                        if at is None:
                            at = ts
                        if on_reading is not None \
                                or not applied_quietly(state.decision, verdict, at):
                            self._emit(step.rule, state, reading, at, key, data, alerts)
                        if step.timed:
                            deadline = _deadline(step.rule, state)
                            if deadline is not None:
                                self._schedule(deadline, route.stream, key, step.state_key)
                    except BaseException as exc:
                        if is_fatal(exc):
                            raise
                        self._failed(step.rule, key, "score", exc, event, i)
            if awaiting_inhibition:
                decider.decide_inhibition(self._decision_of)
        for (stream, key), entity in dirty.items():
            self.store.save(stream, key, entity)
        self._batch = {}
        return alerts

    def _unused(self, rule: CompiledRule, reading: Reading) -> None:
        cause = "late" if reading.verdict is _LATE else str(reading.evidence.get("skipped"))
        ident = (rule.id, cause)
        self.unused[ident] = self.unused.get(ident, 0) + 1
        if self.on_unused is not None:
            self.on_unused(rule, reading)

    def _failed(self, rule: CompiledRule, key: str, phase: Phase, exc: BaseException,
                event: Event | None = None, index: int | None = None) -> None:
        self.failures.append(ScoringFailure(rule.id, key, phase, describe(exc), event, index))

    def take_failures(self) -> list[ScoringFailure]:
        """The failures recorded since the last call (the caller reports them)."""
        failures, self.failures = self.failures, []
        return failures

    def _emit(self, rule: CompiledRule, state: RuleState, reading: Reading, ts: float, key: str,
              data: dict[str, Any], alerts: list[Alert]) -> None:
        if self.on_reading is not None:
            self.on_reading(rule, key, ts, reading)
        self.decider.reading(rule, state.decision, reading, ts, key, data, alerts)

    def _load(self, stream: str, key: str) -> EntityState | None:
        stored = self.store.load(stream, key)
        return None if stored is None else as_entity_state(stored)

    def _decision_of(self, stream: str, key: str, state_key: str) -> DecisionState | None:
        """A rule's decision for a key: as this batch left it, else as stored."""
        entity = self._batch.get((stream, key))
        if entity is None:
            entity = self._load(stream, key)
        state = None if entity is None else entity.rules.get(state_key)
        return None if state is None else state.decision

    def _schedule(self, deadline: float, stream: str, key: str, state_key: str) -> None:
        ident = (stream, key, state_key)
        current = self._scheduled.get(ident)
        # One heap entry per watched key: a later deadline is found when the earlier one pops.
        if current is None or deadline < current:
            self._scheduled[ident] = deadline
            heapq.heappush(self._deadlines, (deadline, stream, key, state_key))

    def advance(self, now: float) -> list[Alert]:
        """Fire every deadline earlier than ``now`` (event time in replay, wall clock live)."""
        alerts: list[Alert] = []
        heap = self._deadlines
        decider = self.decider
        decider.start_moment()
        while heap and heap[0][0] < now:
            deadline, stream, key, state_key = heapq.heappop(heap)
            ident = (stream, key, state_key)
            if self._scheduled.get(ident) != deadline:
                continue
            del self._scheduled[ident]
            rule = self.rules.get(state_key)
            entity = self._load(stream, key)
            if rule is None or entity is None or state_key not in entity.rules:
                continue  # rule removed, or key moved to another worker
            try:
                self._fire(rule, stream, key, entity, now, alerts)
            except BaseException as exc:
                if is_fatal(exc):
                    raise
                self._failed(rule, key, "deadline", exc)  # this key's timer is dropped
            if decider.awaiting_inhibition:
                decider.decide_inhibition(self._decision_of)
        return alerts

    def _fire(self, rule: CompiledRule, stream: str, key: str, entity: EntityState, now: float,
              alerts: list[Alert]) -> None:
        state = entity.rules[rule.state_key]
        actual = _deadline(rule, state)
        if actual is None:
            return
        if actual >= now:
            self._schedule(actual, stream, key, rule.state_key)
            return
        due = _model_deadline(rule, state)
        if due is not None and due < now:
            reading = rule.model.on_deadline(state.model, due)
            self._emit(rule, state, reading, due, key, state.context or {}, alerts)
        self.decider.clock(rule, state.decision, key, now, state.context or {}, alerts)
        self.store.save(stream, key, entity)
        following = _deadline(rule, state)
        if following is not None:
            self._schedule(following, stream, key, rule.state_key)

    def sweep(self, now: float) -> int:
        """Drop state that can no longer matter: of rules no longer loaded, and of keys idle for
        longer than their rule's ``state_ttl`` (unless the alert is firing or a deadline is
        pending). Returns how many rule states were dropped."""
        dropped = 0
        for stream, key, stored in list(self.store.entities()):
            entity = as_entity_state(stored)
            stale = []
            for state_key, state in entity.rules.items():
                rule = self.rules.get(state_key)
                if rule is None or self._idle(rule, key, state, now):
                    stale.append(state_key)
            if not stale:
                continue
            for state_key in stale:
                del entity.rules[state_key]
            dropped += len(stale)
            if entity.rules:
                self.store.save(stream, key, entity)
            else:
                self.store.delete(stream, key)
        return dropped

    def reschedule_all(self) -> None:
        """Rebuild the deadline heap from the store (after a restart or a rebalance)."""
        self._deadlines.clear()
        self._scheduled.clear()
        for stream, key, entity in self.store.entities():
            for state_key, state in as_entity_state(entity).rules.items():
                rule = self.rules.get(state_key)
                if rule is None:
                    continue
                try:
                    deadline = _deadline(rule, state)
                except BaseException as exc:
                    if is_fatal(exc):
                        raise
                    self._failed(rule, key, "housekeeping", exc)
                    continue
                if deadline is not None:
                    self._schedule(deadline, stream, key, state_key)

    def _idle(self, rule: CompiledRule, key: str, state: RuleState, now: float) -> bool:
        try:
            return _idle(rule, state, now)
        except BaseException as exc:
            if is_fatal(exc):
                raise
            self._failed(rule, key, "housekeeping", exc)
            return False
