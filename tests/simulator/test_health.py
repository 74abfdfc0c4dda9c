"""The health simulator: deterministic, valid events, and its incidents are detected."""

from __future__ import annotations

import pytest

from bench.quality import run_quality
from simulator.base import SimContext, parse_start
from simulator.departments.health import MODELS, Health
from tests.simkit import RULES, context, decoded, sliced

START = parse_start("2024-06-03T00:00:00")


def _ctx(seed: int = 5) -> SimContext:
    return context(seed, 12)


def test_same_seed_same_plan_and_events_however_the_run_is_cut() -> None:
    a, b = Health(_ctx()), Health(_ctx())
    assert [i.as_json() for i in a.plan()] == [i.as_json() for i in b.plan()]
    whole = sliced(a, [START, START + 4 * 3600])
    assert whole == sliced(b, [START, START + 3600 + 77, START + 4 * 3600])
    assert len(whole) > 1000


def test_events_validate_and_every_model_has_incidents() -> None:
    dept = Health(_ctx())
    incidents = dept.plan()
    assert {i.model_id for i in incidents} == set(MODELS)
    assert len({i.incident_id for i in incidents}) == len(incidents)
    for envelope in dept.events(START, START + 12 * 3600, incidents):
        decoded(envelope)


@pytest.mark.slow
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
