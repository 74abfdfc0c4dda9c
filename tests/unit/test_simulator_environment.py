"""The environment simulator: deterministic, valid events, and its incidents are caught."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from bench.quality import score
from engine.core import MemoryStore, ScoringCore
from engine.loader import load_rules
from simulator.base import Department, Envelope, SimContext, parse_start
from simulator.departments.environment import Environment, aqi_of_pm25, wq_class
from simulator.run import reference_city
from topics.codec import Event, decode

RULES = Path(__file__).resolve().parents[2] / "rules"


@cache
def city():
    return reference_city(RULES)


def make(seed: int, start: str, hours: float) -> Environment:
    begin = parse_start(start)
    ctx = SimContext(seed=seed, start=begin, end=begin + hours * 3600, city=city())
    return Environment(ctx)


def run(dept: Department, step: float = 3600.0) -> list[Envelope]:
    incidents = dept.plan()
    out, t0 = [], dept.ctx.start
    while t0 < dept.ctx.end:
        t1 = min(t0 + step, dept.ctx.end)
        out += sorted((e for e in dept.events(t0, t1, incidents) if t0 <= e.ts < t1),
                      key=lambda e: (e.ts, e.key))
        t0 = t1
    return out


def detect(dept: Department) -> dict:
    loaded = load_rules([RULES])
    rules = [r for r in loaded.rules if set(r.spec.sources) & set(dept.topics)
             and r.file.parent.name == "environment"]
    core = ScoringCore(rules, MemoryStore())
    alerts, clock = [], float("-inf")
    for envelope in run(dept):
        event = decode(envelope.topic, envelope.value, key=envelope.key)
        assert isinstance(event, Event)
        if event.ts > clock:
            clock = event.ts
            alerts += core.advance(clock)
        alerts += core.process((event,))
    alerts += core.advance(dept.ctx.end)
    truth = dept.plan()
    return score(truth, alerts, {r.id: "environment" for r in rules})


def test_same_seed_same_events_whatever_the_slices() -> None:
    a = [e.as_json() for e in run(make(5, "2024-06-03T00:00:00", 4))]
    b = [e.as_json() for e in run(make(5, "2024-06-03T00:00:00", 4), step=1800.0)]
    assert a == b
    assert len(a) > 4000
    c = [e.as_json() for e in run(make(6, "2024-06-03T00:00:00", 4))]
    assert a != c


def test_events_validate_and_carry_what_the_rules_need() -> None:
    metrics = {"air": {"pm25", "aqi"}, "water": {"nh3n", "cod", "wq_class"}, "noise": {"db"},
               "emission": {"so2", "nox"}}
    dept = make(2, "2024-06-03T00:00:00", 3)
    troubled = {i.key for i in dept.plan()}
    for envelope in run(dept):
        event = decode(envelope.topic, envelope.value, key=envelope.key)
        assert isinstance(event, Event), event
        value = envelope.value
        assert value["metric"] in metrics[value["kind"]]
        if envelope.key in troubled:
            continue
        if value["kind"] == "emission":  # normal operation: within the permit
            assert value["limit"] > value["value"]
        if value["metric"] == "wq_class":  # normal: at or better than the target class III
            assert value["target_class"] == 3 and value["value"] <= 3


def test_aqi_and_water_class_follow_the_standards() -> None:
    assert aqi_of_pm25(35) == 50 and aqi_of_pm25(75) == 100 and aqi_of_pm25(150) == 200
    assert aqi_of_pm25(200) == 250
    assert wq_class(0.4, 12) == 2 and wq_class(0.8, 12) == 3 and wq_class(0.4, 25) == 4
    assert wq_class(2.5, 12) == 6


@pytest.mark.timeout(120)
def test_planned_incidents_are_detected_without_false_alarms() -> None:
    scores = detect(make(3, "2024-06-03T00:00:00", 24))
    models = [m for m in scores if m.startswith("environment.")]
    assert len(models) == 8
    for model in models:
        assert scores[model].incidents == 2, model
        assert scores[model].detected == 2, model
        assert scores[model].alerts == scores[model].matched_alerts, model
