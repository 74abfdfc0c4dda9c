"""Every kind that judges fields of the event says ``UNDECIDED`` when the event lacks them: a
HOLD (the decision layer takes it as any HOLD) that the engine counts for the rule."""

import pytest

from models.base import UNDECIDED, Verdict
from tests.rulekit import VEHICLE, rule, vehicle

PARAMS = {
    "threshold": {"condition": "tank_temp_c > 50"},
    "joined": {"table": "events.hazchem.waybill", "via": "waybill_id", "record": "waybill",
               "condition": "tank_temp_c > 50"},
    "geofence": {"mode": "inside", "zones": ["school"], "when": "valve_open"},
    "lookup": {"list": "hazchem_qualified_drivers", "field": "driver_id",
               "match": "not_in_force"},
    "rate": {"field": "tank_temp_c", "within": "5m", "condition": "rise > 5"},
    "flatline": {"field": "tank_temp_c", "count": 3},
    "anomaly": {"field": "tank_temp_c", "detector": "gaussian"},
    "drift": {"field": "tank_temp_c", "detector": "adwin"},
    "forecast": {"field": "tank_temp_c", "limit": 60, "horizon": "10m", "every": "1m"},
}


@pytest.mark.parametrize("kind", sorted(PARAMS))
def test_an_event_without_the_field_is_undecided_and_one_with_it_is_judged(kind):
    model = rule(id=f"test.vehicle.{kind}", source=VEHICLE, kind=kind, **PARAMS[kind]).model
    state = model.new_state()
    assert model.score_one(state, vehicle(0, speed_kmh=40.0)) is UNDECIDED
    judged = model.score_one(state, vehicle(0, speed_kmh=40.0, tank_temp_c=20.0,
                                            driver_id="D1", valve_open=False))
    assert judged is not UNDECIDED


def test_undecided_is_a_hold_to_the_decision_layer():
    assert UNDECIDED.verdict is Verdict.HOLD
