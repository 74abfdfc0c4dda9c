"""The market simulator: deterministic for a seed, valid events, and the planned incidents
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
    sim = Simulation(ctx, only=["market"])
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
                               departments=["market"], rules_dir=RULES)
    return scores, meta


def test_every_market_model_detects_both_planned_incidents(quality):
    scores, meta = quality
    assert meta["bad"] == 0
    for model in ("market.bid.blacklisted_company", "market.price.essential_jump",
                  "market.price.anomaly", "market.food.inspection_failure_cluster",
                  "market.credit.downgraded_d_with_permits",
                  "market.inspection.repeated_failures"):
        assert scores[model].incidents == 2, model
        assert scores[model].detected == 2, model


def test_rule_based_market_models_raise_no_false_alarm_on_the_background(quality):
    scores, _ = quality
    for model in ("market.bid.blacklisted_company", "market.price.essential_jump",
                  "market.credit.downgraded_d_with_permits"):
        assert scores[model].alerts == scores[model].matched_alerts, model


def test_background_never_gives_a_permit_holder_level_d_or_a_listed_company_a_bid():
    _, events = simulate(13, 24)
    incident_events = {(e.key, e.ts) for e in events if "-x" in e.value["event_id"]}
    for e in events:
        v = e.value
        if (e.key, e.ts) in incident_events:
            continue
        if v["kind"] == "credit" and v["company_id"].startswith("MC-080"):
            assert v["credit_level"] != "D"
        if v["kind"] == "bid":
            assert v["company_id"] not in ("MC-0901", "MC-0902")
