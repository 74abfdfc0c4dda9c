"""The emergency simulator: deterministic for a seed, valid events, and the planned incidents
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

DEPARTMENT = "emergency"


def test_same_seed_gives_the_same_events_and_truth():
    assert_same_seed_same_events(DEPARTMENT, 6)


def test_events_do_not_depend_on_how_the_run_is_cut():
    assert_independent_of_slicing(DEPARTMENT)


def test_every_event_validates_against_its_topic_and_carries_its_key():
    assert_events_valid(DEPARTMENT, 6)


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
