"""The emergency simulator: the planned incidents of its models detected by the rule set (what
every department does alike: ``test_departments_alike``)."""

import pytest

from bench.quality import run_quality
from tests.simkit import (
    RULES,
    START,
    simulate,
)

DEPARTMENT = "emergency"


@pytest.fixture(scope="module")
def quality():
    scores, meta = run_quality(seed=3, start=START, duration="6h",
                               departments=["emergency"], rules_dir=RULES)
    return scores, meta


@pytest.mark.slow
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
    sim, events = simulate(DEPARTMENT, 17, 6)
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
