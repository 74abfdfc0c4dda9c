"""The urban-lifelines simulator: deterministic, valid events, and its incidents are caught."""

from __future__ import annotations

import pytest

from bench.quality import run_quality
from simulator.base import parse_start
from simulator.departments.utilities import Utilities, in_heating_season
from tests.simkit import RULES, context, decoded, detect, run_in_slices


def make(seed: int, start: str, hours: float) -> Utilities:
    return Utilities(context(seed, hours, start))


@pytest.mark.slow
def test_same_seed_same_events_whatever_the_slices() -> None:
    a = [e.as_json() for e in run_in_slices(make(5, "2024-06-03T00:00:00", 4))]
    b = [e.as_json() for e in run_in_slices(make(5, "2024-06-03T00:00:00", 4), step=1800.0)]
    assert a == b
    assert len(a) > 4000
    c = [e.as_json() for e in run_in_slices(make(6, "2024-06-03T00:00:00", 4))]
    assert a != c


def test_events_validate_and_use_the_documented_metrics() -> None:
    metrics = {"water": {"pressure_kpa", "flow_m3h"}, "gas": {"pressure_kpa", "lel_pct"},
               "heat": {"supply_temp_c", "return_temp_c"}, "drainage": {"level_m"},
               "bridge": {"strain_ue", "tilt_deg"}, "power": {"feeder_trip"},
               "streetlight": {"lamp_fault"}}
    for envelope in run_in_slices(make(2, "2024-06-03T00:00:00", 3)):
        decoded(envelope)
        value = envelope.value
        assert value["metric"] in metrics[value["network"]] | {"cover_tilt_deg"}
        if value["network"] == "gas" and value["metric"] == "pressure_kpa":
            assert value["value"] > 250  # normal medium pressure, well above the 200 kPa drop
        if value["network"] == "heat":
            assert value["in_season"] is False  # June


def test_heating_season_follows_the_calendar() -> None:
    june = make(1, "2024-06-03T00:00:00", 24)
    assert not [i for i in june.plan() if i.model_id.startswith("utilities.heating")]
    december = make(1, "2024-12-02T00:00:00", 24)
    assert {i.model_id for i in december.plan()} >= {"utilities.heating.supply_temp_low",
                                                     "utilities.heating.return_temp_shift"}
    assert in_heating_season(june.ctx.local(parse_start("2025-03-15T12:00:00")))
    assert not in_heating_season(june.ctx.local(parse_start("2025-03-16T12:00:00")))


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_planned_incidents_are_detected() -> None:
    scores = detect(make(3, "2024-06-03T00:00:00", 24), "utilities")
    for model in ("utilities.water.pressure_drop", "utilities.water.night_flow_rising",
                  "utilities.gas.pressure_out_of_band", "utilities.gas.manhole_lel",
                  "utilities.drainage.level_high", "utilities.drainage.level_rising_fast",
                  "utilities.manhole.cover_displaced", "utilities.bridge.tilt_over_limit",
                  "utilities.power.feeder_trip_cluster",
                  "utilities.streetlight.failure_cluster", "utilities.sensor.offline",
                  "utilities.sensor.stuck"):
        assert scores[model].incidents == 2, model
        assert scores[model].detected == 2, model
    # Threshold-like models raise no alarm of their own on the background.
    for model in ("utilities.water.pressure_drop", "utilities.gas.pressure_out_of_band",
                  "utilities.sensor.offline", "utilities.sensor.stuck",
                  "utilities.power.feeder_trip_cluster"):
        assert scores[model].alerts == scores[model].matched_alerts, model


@pytest.mark.slow
def test_the_learned_flow_and_strain_models_detect_their_incidents_after_ten_days_of_history():
    scores, _ = run_quality(seed=3, start="2024-06-03T00:00:00", duration="1d",
                               departments=["utilities"], rules_dir=RULES, history="10d")
    # two surges of its own, and two hidden leaks (companions) that are unusual for the hour
    assert scores["utilities.water.flow_anomaly"].incidents == 4
    assert scores["utilities.water.flow_anomaly"].detected == 4
    assert scores["utilities.bridge.strain_anomaly"].detected == 2
