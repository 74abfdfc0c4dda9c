"""Checks every simulator department must pass: determinism, slicing, valid events."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from simulator.base import SimContext, parse_start
from simulator.city import City
from simulator.run import Simulation, reference_city
from topics.codec import Event, decode

RULES = Path(__file__).resolve().parents[1] / "rules"
START = "2024-06-03T00:00:00"


@cache
def city() -> City:
    return reference_city(RULES)


def simulate(department: str, seed: int, hours: float) -> tuple[Simulation, list]:
    begin = parse_start(START)
    ctx = SimContext(seed=seed, start=begin, end=begin + hours * 3600, city=city())
    sim = Simulation(ctx, only=[department])
    return sim, list(sim.events())


def assert_same_seed_same_events(department: str, hours: float) -> None:
    sim_a, a = simulate(department, 7, hours)
    sim_b, b = simulate(department, 7, hours)
    assert [e.as_json() for e in a] == [e.as_json() for e in b]
    assert [i.as_json() for i in sim_a.truth] == [i.as_json() for i in sim_b.truth]
    _, c = simulate(department, 8, hours)
    assert [e.as_json() for e in a] != [e.as_json() for e in c]


def assert_independent_of_slicing(department: str) -> None:
    sim, _ = simulate(department, 5, 6)
    dept = sim.departments[0]
    plan = sim.incidents[dept.name]
    t0 = sim.ctx.start + 3600

    def cut(a: float, b: float) -> list:
        return sorted((e.ts, e.topic, e.key, sorted(e.value.items()))
                      for e in dept.events(a, b, plan) if a <= e.ts < b)

    assert cut(t0, t0 + 7200) == cut(t0, t0 + 3600) + cut(t0 + 3600, t0 + 7200)


def assert_events_valid(department: str, hours: float) -> list:
    _, events = simulate(department, 11, hours)
    assert events
    for envelope in events:
        decoded = decode(envelope.topic, envelope.value, key=envelope.key)
        assert isinstance(decoded, Event), decoded
        assert decoded.key == envelope.key
    return events
