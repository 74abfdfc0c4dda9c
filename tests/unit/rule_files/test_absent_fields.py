"""``engine.rule_files.absent_fields``: which conditions a missing optional field quietly
silences."""

import time

from engine.rule_files import absent_fields
from engine.rule_files.absent_fields import absent_field_warnings
from models.correlation import Correlation, CorrelationParams
from models.refdata import ModelEnv
from models.threshold import Threshold, ThresholdParams

VEHICLE = "events.hazchem.vehicle"
EMERGENCY = "events.emergency.report"


def test_a_correlation_signal_is_checked_against_its_own_topic():
    params = CorrelationParams.model_validate({
        "within": "30m", "signals": {
            "red": {"topic": EMERGENCY, "when": 'kind == "weather_warning" && level == "red"'},
            "moving": {"topic": VEHICLE, "when": "speed_kmh > 5"}}})
    (path, message), = absent_field_warnings(Correlation, params, [EMERGENCY, VEHICLE], None,
                                             ModelEnv(), set())
    assert path == ("signals", "red", "when")
    assert message.startswith('signals.red.when never holds without level, and an event '
                              'without it reads as not breaching: kind="weather_warning" '
                              'breaches with level="red"')


def test_a_comparison_without_its_field_is_undecided_not_silenced():
    # ``cargo_class < 2`` is null without cargo_class (counted as undecided); ``== 2.1`` is
    # false, so only the equality's absence reads as "no".
    def warned(condition: str) -> int:
        return len(absent_field_warnings(Threshold, ThresholdParams(condition=condition),
                                         [VEHICLE], None, ModelEnv(), set()))

    assert warned("cargo_class < 2 && speed_kmh > 5") == 0
    assert warned("cargo_class == 2.1 && speed_kmh > 5") == 1


def test_a_condition_naming_every_field_is_checked_in_bounded_time():
    names = ["road_class", "cargo_un", "plate", "driver_id", "waybill_id", "grid_id",
             "valve_open", "ignition", "heading", "load_t", "rated_load_t",
             "tank_pressure_kpa", "tank_temp_c", "driving_min", "cargo_class"]
    clauses = [f"{name} == {'true' if name in ('valve_open', 'ignition') else i}"
               for i, name in enumerate(names * 8)]  # never true: every field searched
    params = ThresholdParams(condition=" && ".join(clauses)[:2000].rsplit(" && ", 1)[0])
    started = time.perf_counter()
    absent_field_warnings(Threshold, params, [VEHICLE], None, ModelEnv(), set())
    assert time.perf_counter() - started < 10


def test_a_check_cut_short_by_its_budget_warns_of_nothing(monkeypatch):
    params = ThresholdParams(condition='road_class == "highway" && speed_kmh > 80')
    assert absent_field_warnings(Threshold, params, [VEHICLE], None, ModelEnv(), set())
    monkeypatch.setattr(absent_fields, "EVALUATIONS_MAX", 3)
    assert absent_field_warnings(Threshold, params, [VEHICLE], None, ModelEnv(), set()) == []
