"""The simulator tests' kit: a department's run, its slices, its events checked against their
topics, and its incidents scored by the rule set; plus the checks every department must pass
(determinism, slicing, valid events)."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bench.quality import score
from engine.core import MemoryStore, ScoringCore
from engine.rule_files.loader import load_rules
from simulator import run
from simulator.base import Department, Envelope, SimContext, parse_start
from simulator.city import City
from simulator.run import Simulation
from topics.codec import Event, decode

RULES = Path(__file__).resolve().parents[1] / "rules"
START = "2024-06-03T00:00:00"

Row = Callable[[Envelope], Any]


@cache
def city() -> City:
    """The city with the rule set's zones (only the reference files are read: the zones are
    all a city takes from the rule set, and the whole set takes a second to load)."""
    return run.reference_city(RULES / "reference")


def context(seed: int, hours: float, start: str = START) -> SimContext:
    """A run of ``hours`` from ``start`` in the reference city."""
    begin = parse_start(start)
    return SimContext(seed=seed, start=begin, end=begin + hours * 3600, city=city())


def simulate(department: str, seed: int, hours: float) -> tuple[Simulation, list]:
    sim = Simulation(context(seed, hours), only=[department])
    return sim, list(sim.events())


def content(envelope: Envelope) -> tuple:
    """All an envelope says, comparable."""
    return envelope.ts, envelope.topic, envelope.key, repr(sorted(envelope.value.items()))


def sliced(dept: Department, cuts: Iterable[float], row: Row = content) -> list:
    """``row`` of each event of the department's planned run between consecutive ``cuts``, each
    slice asked for on its own (as a live run asks), sorted."""
    incidents = dept.plan()
    return sorted(row(e) for t0, t1 in itertools.pairwise(cuts)
                  for e in dept.events(t0, t1, incidents) if t0 <= e.ts < t1)


def run_in_slices(dept: Department, step: float = 3600.0) -> list[Envelope]:
    """The department's planned run asked for ``step`` seconds at a time, in time order."""
    incidents = dept.plan()
    out, t0 = [], dept.ctx.start
    while t0 < dept.ctx.end:
        t1 = min(t0 + step, dept.ctx.end)
        out += sorted((e for e in dept.events(t0, t1, incidents) if t0 <= e.ts < t1),
                      key=lambda e: (e.ts, e.key))
        t0 = t1
    return out


def decoded(envelope: Envelope) -> Event:
    """The envelope's event, which must validate against its topic and carry its key."""
    event = decode(envelope.topic, envelope.value, key=envelope.key)
    assert isinstance(event, Event), event
    assert event.key == envelope.key
    return event


def detect(dept: Department, folder: str) -> dict:
    """Scores of the planned incidents of the department's run (a step of an hour) against the
    alerts of the rules in ``rules/<folder>`` that read its topics."""
    loaded = load_rules([RULES])
    rules = [r for r in loaded.rules if set(r.spec.sources) & set(dept.topics)
             and r.file.parent.name == folder]
    core = ScoringCore(rules, MemoryStore())
    alerts, clock = [], float("-inf")
    for envelope in run_in_slices(dept):
        event = decoded(envelope)
        if event.ts > clock:
            clock = event.ts
            alerts += core.advance(clock)
        alerts += core.process((event,))
    alerts += core.advance(dept.ctx.end)
    return score(dept.plan(), alerts, {r.id: folder for r in rules})


def department_rules(tmp_path_factory: pytest.TempPathFactory, folder: str) -> Path:
    """A rule set of one department's rules with the shared vocabulary and reference data
    (quicker to load, and independent of other departments' files)."""
    root = tmp_path_factory.mktemp("rules")
    for part in (folder, "vocabulary", "reference"):
        shutil.copytree(RULES / part, root / part)
    return root


def only_department(monkeypatch: pytest.MonkeyPatch, name: str, cls: type[Department]) -> None:
    """Simulate only this department, whatever other modules the simulator package has."""
    monkeypatch.setattr(run, "departments", lambda: {name: cls})


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
    t0 = sim.ctx.start + 3600
    assert sliced(dept, [t0, t0 + 7200]) == sliced(dept, [t0, t0 + 3600, t0 + 7200])


def assert_events_valid(department: str, hours: float) -> list:
    _, events = simulate(department, 11, hours)
    assert events
    for envelope in events:
        decoded(envelope)
    return events
