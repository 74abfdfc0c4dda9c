"""The cross simulator: deterministic for a seed, valid events, and the planned incidents
of its models detected by the rule set."""


import pytest

from bench.quality import run_quality
from tests.simkit import (
    RULES,
    START,
    assert_events_valid,
    assert_independent_of_slicing,
    assert_same_seed_same_events,
    simulate,
)

DEPARTMENT = "cross"


def test_same_seed_gives_the_same_events_and_truth():
    assert_same_seed_same_events(DEPARTMENT, 24)


def test_events_do_not_depend_on_how_the_run_is_cut():
    assert_independent_of_slicing(DEPARTMENT)


def test_every_event_validates_against_its_topic_and_carries_its_key():
    assert_events_valid(DEPARTMENT, 24)


@pytest.fixture(scope="module")
def quality():
    scores, meta = run_quality(seed=3, start=START, duration="1d",
                               departments=["cross"], rules_dir=RULES)
    return scores, meta


@pytest.mark.slow
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
    sim, events = simulate(DEPARTMENT, 23, 24)
    for incident in sim.truth:
        if incident.model_id == "cross.grid.rainstorm_drainage_waterlogging":
            topics = {e.topic for e in events if e.value.get("grid_id") == incident.key}
            assert {"events.emergency.report", "events.utilities.sensor",
                    "events.hotline.ticket"} <= topics
        if incident.model_id == "cross.district.fever_surge_school_absence":
            kinds = {e.value["kind"] for e in events
                     if e.topic == "events.health.report" and e.value["district"] == incident.key}
            assert kinds == {"fever_visit", "school_absence"}
