"""The environment simulator: deterministic, valid events, and its incidents are caught."""

from __future__ import annotations

import pytest

from simulator.departments.environment import Environment, aqi_of_pm25, wq_class
from tests.simkit import context, decoded, detect, run_in_slices


def make(seed: int, hours: float) -> Environment:
    return Environment(context(seed, hours))


def test_same_seed_same_events_whatever_the_slices() -> None:
    a = [e.as_json() for e in run_in_slices(make(5, 4))]
    b = [e.as_json() for e in run_in_slices(make(5, 4), step=1800.0)]
    assert a == b
    assert len(a) > 4000
    c = [e.as_json() for e in run_in_slices(make(6, 4))]
    assert a != c


def test_events_validate_and_carry_what_the_rules_need() -> None:
    metrics = {"air": {"pm25", "aqi"}, "water": {"nh3n", "cod", "wq_class"}, "noise": {"db"},
               "emission": {"so2", "nox"}}
    dept = make(2, 3)
    troubled = {i.key for i in dept.plan()}
    for envelope in run_in_slices(dept):
        decoded(envelope)
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


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_planned_incidents_are_detected_without_false_alarms() -> None:
    scores = detect(make(3, 24), "environment")
    models = [m for m in scores if m.startswith("environment.")]
    assert len(models) == 8
    for model in models:
        assert scores[model].incidents == 2, model
        assert scores[model].detected == 2, model
        assert scores[model].alerts == scores[model].matched_alerts, model
