"""The cross simulator: deterministic for a seed, valid events, and the planned incidents
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
    sim = Simulation(ctx, only=["cross"])
    return sim, list(sim.events())


def test_same_seed_gives_the_same_events_and_truth():
    sim_a, a = simulate(7, 24)
    sim_b, b = simulate(7, 24)
    assert [e.as_json() for e in a] == [e.as_json() for e in b]
    assert [i.as_json() for i in sim_a.truth] == [i.as_json() for i in sim_b.truth]
    _, c = simulate(8, 24)
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
    _, events = simulate(11, 24)
    assert events
    for envelope in events:
        decoded = decode(envelope.topic, envelope.value, key=envelope.key)
        assert isinstance(decoded, Event), decoded
        assert decoded.key == envelope.key


@pytest.fixture(scope="module")
def quality():
    scores, meta = run_quality(seed=3, start=START, duration="1d",
                               departments=["cross"], rules_dir=RULES)
    return scores, meta


def test_every_cross_model_detects_both_planned_incidents(quality):
    scores, meta = quality
    assert meta["bad"] == 0
    for model in ("cross.grid.gas_smell_and_pressure_drop",
                  "cross.grid.rainstorm_drainage_waterlogging",
                  "cross.district.fever_surge_school_absence",
                  "cross.grid.crowd_report_site_over_capacity",
                  "cross.feeder.hospital_feeder_trips"):
        assert scores[model].incidents == 2, model
        assert scores[model].detected == 2, model
        assert scores[model].alerts == scores[model].matched_alerts, model


def test_the_signals_of_each_combined_incident_share_its_key():
    sim, events = simulate(23, 24)
    for incident in sim.truth:
        if incident.model_id == "cross.grid.rainstorm_drainage_waterlogging":
            topics = {e.topic for e in events if e.value.get("grid_id") == incident.key}
            assert {"events.emergency.report", "events.utilities.sensor",
                    "events.hotline.ticket"} <= topics
        if incident.model_id == "cross.district.fever_surge_school_absence":
            kinds = {e.value["kind"] for e in events
                     if e.topic == "events.health.report" and e.value["district"] == incident.key}
            assert kinds == {"fever_visit", "school_absence"}
