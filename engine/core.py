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
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.alert_record import build_alert
from engine.decision import DecisionState, applied_quietly, clear_deadline, decide, settle
from engine.failures import Phase, ScoringFailure, describe, is_fatal
from engine.loader import CompiledRule
from engine.plans import Route, route_key, stream_of
from models.base import UNDECIDED, Reading, Verdict, pickled_by_position
from topics.codec import Event
from topics.records import Alert, Severity

Entity = dict[str, "RuleState"]
"""The state of every rule watching one key of one stream, by rule ``state_key``."""

ORIGINS = "~origins"
"""Entity entry (not a rule): per source (topic, partition), the offset of the newest event
applied. Kafka delivers at least once: after a rebalance or a crash the new owner reads again
from the committed offset, which can be behind the state it recovers (and a re-keyed event is
forwarded again). Kept with the state those events changed, this mark drops exactly the
repeats, so a window does not count an event twice and an old reading does not restart a
``for`` clock. (A department topic deleted and created again restarts its offsets: its
consumers' state must start afresh too, under a new app id.)"""

Origin = tuple[str, int, int]
"""(source topic, partition, offset) of an event."""


@pickled_by_position
@dataclass(slots=True)
class RuleState:
    model: Any
    decision: DecisionState = field(default_factory=DecisionState)
    seen: float = float("-inf")
    """Event time of the newest event this rule scored for the key (for idle expiry)."""
    context: dict[str, Any] | None = None
    """Fields of the latest event the summary needs, for alerts raised by a deadline."""


class StateStore(Protocol):
    def load(self, stream: str, key: str) -> Entity | None: ...
    def save(self, stream: str, key: str, entity: Entity) -> None: ...
    def delete(self, stream: str, key: str) -> None: ...
    def entities(self) -> Iterator[tuple[str, str, Entity]]: ...


class MemoryStore:
    """A dict of entities: for replay, tests and benchmarks."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], Entity] = {}

    def load(self, stream: str, key: str) -> Entity | None:
        return self.data.get((stream, key))

    def save(self, stream: str, key: str, entity: Entity) -> None:
        self.data[(stream, key)] = entity

    def delete(self, stream: str, key: str) -> None:
        self.data.pop((stream, key), None)

    def entities(self) -> Iterator[tuple[str, str, Entity]]:
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


def _escalation_deadline(rule: CompiledRule, state: RuleState) -> float | None:
    """When the next level that waits only for time (``after``, no ``when``) is due."""
    decision = state.decision
    if not decision.firing or decision.fired_at is None:
        return None
    rank = Severity(decision.severity or rule.spec.severity).rank
    for severity, when, after in rule.escalations:
        if severity.rank > rank and when is None and after is not None:
            return decision.fired_at + after
    return None


def _deadline(rule: CompiledRule, state: RuleState) -> float | None:
    """The earliest of the model's deadline and the alert's own (clear_for, escalation)."""
    if not rule.lifecycle_timers:
        return _model_deadline(rule, state)
    times = [t for t in (_model_deadline(rule, state),
                         clear_deadline(state.decision, rule.spec.clear_for),
                         _escalation_deadline(rule, state)) if t is not None]
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
        self.undecided: dict[str, int] = {}
        """Events each rule saw but could not judge so far, by rule id: its reading was
        ``UNDECIDED`` (a field its condition needs was missing), which still counts as a HOLD.
        A dict, not a callback: the worker reports it once a batch, not once an event."""
        self.failures: list[ScoringFailure] = []
        """Rules that raised since the caller last took them (``take_failures``)."""
        self._batch: dict[tuple[str, str], Entity] = {}
        self._awaiting_inhibition: list[tuple[Alert, CompiledRule, str]] = []
        """Alerts of inhibitable rules raised at this moment (an event, a deadline), whose
        ``inhibited_by`` is decided once every rule has had its say (``_decide_inhibition``)."""
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
        # model id -> (rule, its streams) of the rules whose red alert inhibits it
        self._inhibitors: dict[str, list[tuple[CompiledRule, list[str]]]] = {}
        for red in self.rules.values():
            for pattern in red.spec.inhibits:
                for target in self.rules.values():
                    if target is not red and _glob(pattern, target.id):
                        self._inhibitors.setdefault(target.id, []).append(
                            (red, [stream_of(red, t) for t in red.spec.sources]))

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
        (see ``ORIGINS``).
        """
        alerts: list[Alert] = []
        # Entities of this batch, loaded once and saved at its end (inhibition reads them too).
        dirty: dict[tuple[str, str], Entity] = {}
        self._batch = dirty
        on_reading = self.on_reading
        awaiting_inhibition = self._awaiting_inhibition
        awaiting_inhibition.clear()
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
                    entity = self.store.load(route.stream, key) or {}
                    dirty[ident] = entity
                if origin is not None and _repeated(entity, origin):
                    self.repeated += 1
                    continue
                # One event through each rule whose ``where`` holds for it (inline: this is
                # the loop every (event, rule) pair goes through).
                for step in plan.steps:
                    slot = step.slot
                    if slot >= 0 and not held[slot]:
                        continue
                    state = entity.get(step.state_key)
                    if state is None:
                        state = entity[step.state_key] = RuleState(step.rule.model.new_state())
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
                self._decide_inhibition()
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
        spec = rule.spec
        decision = state.decision
        transition = decide(decision, reading, ts, spec.hold_for, rule.id, key,
                            spec.clear_for, spec.cooldown)
        if transition == "firing":
            decision.severity = spec.severity.value
            self._level(rule, state, ts, {**data, **(reading.evidence or {})})
            alerts.append(self._alert(rule, decision, transition, key, data))
        elif transition is not None:
            alerts.append(self._alert(rule, decision, transition, key, data))
        elif decision.firing and reading.verdict is Verdict.BREACH and rule.escalations \
                and self._level(rule, state, ts, {**data, **(reading.evidence or {})}):
            alerts.append(self._alert(rule, decision, "escalated", key, data))

    def _level(self, rule: CompiledRule, state: RuleState, ts: float,
               values: dict[str, Any] | None) -> bool:
        """Raise the firing alert to the highest level whose conditions hold; True if it rose.
        ``values`` is None when the clock asks (only levels without ``when`` can be met)."""
        decision = state.decision
        rank = Severity(decision.severity or rule.spec.severity).rank
        reached = None
        for severity, when, after in rule.escalations:
            if severity.rank <= rank:
                continue
            if after is not None and (decision.fired_at is None
                                      or ts - decision.fired_at < after):
                continue
            if when is not None and (values is None or when.evaluate(values) is not True):
                continue
            reached = severity
        if reached is None:
            return False
        decision.severity = reached.value
        return True

    def _lifecycle_due(self, rule: CompiledRule, state: RuleState, key: str, now: float,
                       alerts: list[Alert]) -> None:
        """What the clock does to the alert itself: resolve a clear that lasted, escalate."""
        decision = state.decision
        data = state.context or {}
        due = _escalation_deadline(rule, state)
        if due is not None and due < now and self._level(rule, state, due, None):
            decision.last_ts = max(decision.last_ts or due, due)
            alerts.append(self._alert(rule, decision, "escalated", key, data))
        if settle(decision, now, rule.spec.clear_for) is not None:
            alerts.append(self._alert(rule, decision, "resolved", key, data))

    def _alert(self, rule: CompiledRule, decision: DecisionState, state: str, key: str,
               data: dict[str, Any]) -> Alert:
        alert = build_alert(rule, decision, state, key, data)
        if alert.severity is not Severity.RED and rule.id in self._inhibitors:
            # Decided after the moment's other rules: a red alert the same event raises (or
            # resolves) counts whether its rule comes before this one or after.
            self._awaiting_inhibition.append((alert, rule, key))
        return alert

    def _decide_inhibition(self) -> None:
        """Mark the alerts raised at this moment ``inhibited_by`` the red alerts firing now."""
        for alert, rule, key in self._awaiting_inhibition:
            alert.inhibited_by = self._inhibited_by(rule, key)
        self._awaiting_inhibition.clear()

    def _inhibited_by(self, rule: CompiledRule, key: str) -> str | None:
        """The id of a red alert firing for ``key`` from a rule that inhibits this one."""
        for red, streams in self._inhibitors.get(rule.id, ()):
            for stream in streams:
                entity = self._batch.get((stream, key)) or self.store.load(stream, key)
                state = entity.get(red.state_key) if entity else None
                if state is not None and state.decision.firing \
                        and state.decision.severity == Severity.RED.value:
                    return state.decision.alert_id
        return None

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
        self._awaiting_inhibition.clear()
        while heap and heap[0][0] < now:
            deadline, stream, key, state_key = heapq.heappop(heap)
            ident = (stream, key, state_key)
            if self._scheduled.get(ident) != deadline:
                continue
            del self._scheduled[ident]
            rule = self.rules.get(state_key)
            entity = self.store.load(stream, key)
            if rule is None or entity is None or state_key not in entity:
                continue  # rule removed, or key moved to another worker
            try:
                self._fire(rule, stream, key, entity, now, alerts)
            except BaseException as exc:
                if is_fatal(exc):
                    raise
                self._failed(rule, key, "deadline", exc)  # this key's timer is dropped
            if self._awaiting_inhibition:
                self._decide_inhibition()
        return alerts

    def _fire(self, rule: CompiledRule, stream: str, key: str, entity: Entity, now: float,
              alerts: list[Alert]) -> None:
        state = entity[rule.state_key]
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
        self._lifecycle_due(rule, state, key, now, alerts)
        self.store.save(stream, key, entity)
        following = _deadline(rule, state)
        if following is not None:
            self._schedule(following, stream, key, rule.state_key)

    def sweep(self, now: float) -> int:
        """Drop state that can no longer matter: of rules no longer loaded, and of keys idle for
        longer than their rule's ``state_ttl`` (unless the alert is firing or a deadline is
        pending). Returns how many rule states were dropped."""
        dropped = 0
        for stream, key, entity in list(self.store.entities()):
            stale = []
            for state_key, state in entity.items():
                rule = self.rules.get(state_key)
                if state_key != ORIGINS and (rule is None or self._idle(rule, key, state, now)):
                    stale.append(state_key)
            if not stale:
                continue
            for state_key in stale:
                del entity[state_key]
            dropped += len(stale)
            if entity.keys() - {ORIGINS}:
                self.store.save(stream, key, entity)
            else:
                self.store.delete(stream, key)
        return dropped

    def reschedule_all(self) -> None:
        """Rebuild the deadline heap from the store (after a restart or a rebalance)."""
        self._deadlines.clear()
        self._scheduled.clear()
        for stream, key, entity in self.store.entities():
            for state_key, state in entity.items():
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


def _repeated(entity: Entity, origin: Origin) -> bool:
    """True if ``entity`` already applied the event at ``origin``; else record it as applied."""
    topic, partition, offset = origin
    marks = entity.get(ORIGINS)
    if marks is None:
        marks = entity[ORIGINS] = RuleState({})
    source = (topic, partition)
    if marks.model.get(source, -1) >= offset:
        return True
    marks.model[source] = offset
    return False


def _glob(pattern: str, value: str) -> bool:
    return value.startswith(pattern[:-1]) if pattern.endswith("*") else value == pattern
