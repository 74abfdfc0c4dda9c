"""The emergency simulator: deterministic for a seed, valid events, and the planned incidents
of its models detected by the rule set."""

from functools import cache
from pathlib import Path

import pytest

from bench.quality import run_quality
from engine.simulator.base import SimContext, parse_start
from engine.simulator.run import Simulation, reference_city
from topics.codec import Event, decode

RULES = Path(__file__).resolve().parents[2] / "rules"
START = "2024-06-03T00:00:00"


@cache
def city():
    return reference_city(RULES)


def simulate(seed: int, hours: float) -> tuple[Simulation, list]:
    begin = parse_start(START)
    ctx = SimContext(seed=seed, start=begin, end=begin + hours * 3600,
                     city=city())
    sim = Simulation(ctx, only=["emergency"])
    return sim, list(sim.events())


def test_same_seed_gives_the_same_events_and_truth():
    sim_a, a = simulate(7, 6)
    sim_b, b = simulate(7, 6)
    assert [e.as_json() for e in a] == [e.as_json() for e in b]
    assert [i.as_json() for i in sim_a.truth] == [i.as_json() for i in sim_b.truth]
    _, c = simulate(8, 6)
    assert [e.as_json() for e in a] != [e.as_json() for e in c]


def test_events_do_not_depend_on_how_the_run_is_cut():
    sim, _ = simulate(5, 6)
    dept = sim.departments[0]
    plan = sim.incidents[dept.name]
    t0 = sim.ctx.start + 3600

    def cut(a: float, b: float) -> list:
        return sorted((e.ts, e.topic, e.key, sorted(e.value.items()))
                      for e in dept.events(a, b, plan) if a <= e.ts < b)

    assert cut(t0, t0 + 7200) == cut(t0, t0 + 3600) + cut(t0 + 3600, t0 + 7200)


def test_every_event_validates_against_its_topic_and_carries_its_key():
    _, events = simulate(11, 6)
    assert events
    for envelope in events:
        decoded = decode(envelope.topic, envelope.value, key=envelope.key)
        assert isinstance(decoded, Event), decoded
        assert decoded.key == envelope.key


@pytest.fixture(scope="module")
def quality():
    scores, meta = run_quality(seed=3, start=START, duration="6h",
                               departments=["emergency"], rules_dir=RULES)
    return scores, meta


def test_every_emergency_model_detects_both_planned_incidents(quality):
    scores, meta = quality
    assert meta["bad"] == 0
    for model in ("emergency.fire.alarm_cluster", "emergency.fire.alarm_unconfirmed",
                  "emergency.weather.red_rainstorm_warning", "emergency.rain.heavy_rainfall",
                  "emergency.flood.gauge_over_warning", "emergency.weather.warning_raised"):
        assert scores[model].incidents == 2, model
        assert scores[model].detected == 2, model
        assert scores[model].alerts == scores[model].matched_alerts, model


def test_background_alarms_are_confirmed_in_time_and_gauges_stay_under_their_limits():
    sim, events = simulate(17, 6)
    planned = {i.key for i in sim.truth}
    alarms: dict[str, float] = {}
    for e in events:
        v = e.value
        if v.get("building_id") in planned:
            continue
        if v["kind"] == "fire_alarm":
            alarms[v["building_id"]] = e.ts
        elif v["kind"] == "fire_confirmed":
            assert e.ts - alarms.pop(v["building_id"]) <= 150
        elif v["kind"] == "rainfall" and v["gauge_id"] not in planned:
            assert v["value"] < 50
        elif v["kind"] == "flood_gauge" and v["gauge_id"] not in planned:
            assert v["value"] < v["warning_level"]
