"""The rule index (``where`` guards) only skips work: the city's alerts are the same without it."""

from __future__ import annotations

import pytest

from engine.core import MemoryStore, ScoringCore
from engine.plans import Route
from engine.reference_records import track_lookup_event
from engine.rule_files.loader import load_rules
from models.fastcel import guard_of
from simulator.base import SimContext, parse_start
from simulator.run import Simulation
from tests.simkit import RULES, START, city
from topics.codec import Event, decode


@pytest.mark.parametrize(("source", "constants", "guard"), [
    ('kind == "fire"', {}, ("kind", {"fire"})),
    ('"fire" == kind && level >= 2', {}, ("kind", {"fire"})),
    ('level >= 2 && kind in ["a", "b"]', {}, ("kind", {"a", "b"})),
    ("metric in names && value > 1", {"names": ["x", "y"]}, ("metric", {"x", "y"})),
    ('kind == "fire" || level >= 2', {}, None),       # a disjunction pins nothing
    ("kind == 1", {}, None),                           # numbers compare across int and double
    ('!(kind == "fire")', {}, None),
    ('kind != "fire"', {}, None),
    ('size(kind) > 0 && kind == "a"', {}, None),       # not in the fast subset at all
])
def test_guards_are_only_conjuncts_pinning_a_field_to_strings(source, constants, guard):
    found = guard_of(source, constants)
    assert (found if found is None else (found[0], set(found[1]))) == guard


def city_events(hours: float) -> list[Event]:
    begin = parse_start(START)
    sim = Simulation(SimContext(seed=3, start=begin, end=begin + hours * 3600, city=city()))
    return [e for e in (decode(env.topic, env.value, key=env.key) for env in sim.events())
            if isinstance(e, Event)]


def score(rules, events: list[Event], reference) -> list[tuple[str, str, str, str]]:
    core = ScoringCore(rules, MemoryStore())
    out = []
    for i in range(0, len(events), 500):
        chunk = events[i:i + 500]
        for event in chunk:
            track_lookup_event(reference, event)
        out += core.advance(chunk[0].ts) + core.process(chunk)
    return [(a.model_id, a.key, a.state, a.alert_id) for a in out]


@pytest.mark.slow
def test_the_index_changes_no_alert_of_the_city(monkeypatch):
    loaded = load_rules([RULES])
    events = city_events(3)
    indexed = ScoringCore(loaded.rules, MemoryStore())
    assert any(r.guard_field for routes in indexed._routes.values() for r in routes)
    with_index = score(loaded.rules, events, loaded.env.reference)

    loaded = load_rules([RULES])  # fresh reference data and models
    monkeypatch.setattr(Route, "_index_by_guard", lambda self: None)
    without = score(loaded.rules, events, loaded.env.reference)
    assert len(with_index) > 50
    assert with_index == without


@pytest.mark.slow
def test_sees_is_whether_held_finds_a_rule_for_every_plan_and_event_of_the_city():
    """``stream_keys`` asks ``sees`` (stops at the first condition that holds); scoring asks
    ``held``: they must agree on every event."""
    core = ScoringCore(load_rules([RULES]).rules, MemoryStore())
    checked = seen = 0
    for event in city_events(1):
        for route in core._routes.get(event.topic, ()):
            plan = route.plan_for(event)
            assert plan.sees(event.data) == (plan.held(event.data) is not None)
            checked += 1
            seen += plan.sees(event.data)
    assert 0 < seen < checked  # both answers occur
