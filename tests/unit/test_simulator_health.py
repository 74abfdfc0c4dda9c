"""The health simulator: deterministic, valid events, and its incidents are detected."""

from __future__ import annotations

from pathlib import Path

from bench.quality import run_quality
from simulator.base import SimContext, parse_start
from simulator.departments.health import MODELS, Health
from simulator.run import reference_city
from topics.codec import Event, decode

RULES = Path(__file__).resolve().parents[2] / "rules"
START = parse_start("2024-06-03T00:00:00")


def _ctx(seed: int = 5) -> SimContext:
    return SimContext(seed=seed, start=START, end=START + 12 * 3600, city=reference_city(RULES))


def _slice(dept: Health, t0: float, t1: float) -> list[tuple]:
    return sorted((e.ts, e.key, e.value["event_id"], e.value.get("count"), e.value.get("value"))
                  for e in dept.events(t0, t1, dept.plan()) if t0 <= e.ts < t1)


def test_same_seed_same_plan_and_events_however_the_run_is_cut() -> None:
    a, b = Health(_ctx()), Health(_ctx())
    assert [i.as_json() for i in a.plan()] == [i.as_json() for i in b.plan()]
    whole = _slice(a, START, START + 4 * 3600)
    cut = _slice(b, START, START + 3600 + 77) + _slice(b, START + 3600 + 77, START + 4 * 3600)
    assert whole == sorted(cut)
    assert len(whole) > 1000


def test_events_validate_and_every_model_has_incidents() -> None:
    dept = Health(_ctx())
    incidents = dept.plan()
    assert {i.model_id for i in incidents} == set(MODELS)
    assert len({i.incident_id for i in incidents}) == len(incidents)
    for envelope in dept.events(START, START + 12 * 3600, incidents):
        assert isinstance(decode(envelope.topic, envelope.value, key=envelope.key), Event)


def test_incidents_are_detected_by_their_models() -> None:
    # Ten days of history: the fever-visit model judges nothing in a clinic's first ten days.
    scores, meta = run_quality(seed=3, start="2024-06-03T00:00:00", duration="12h",
                               departments=["health"], rules_dir=RULES, history="10d")
    assert meta["bad"] == 0
    for model in ("health.er.wait_long", "health.ambulance.call_surge",
                  "health.food_poisoning.cluster", "health.vaccine.cold_chain_temperature",
                  "health.hospital.bed_occupancy_high", "health.disease.cluster"):
        score = scores[model]
        assert score.incidents == 2, model
        assert score.detected == 2, model
        assert score.alerts == 2, model
    assert scores["health.fever_clinic.visit_surge"].detected == 2
