"""The cross simulator: the planned incidents of its models detected by the rule set (what
every department does alike: ``test_departments_alike``)."""

import pytest

from bench.quality import run_quality
from tests.simkit import (
    RULES,
    START,
    simulate,
)

DEPARTMENT = "cross"


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
