"""geofence: zones from reference data, routes from waybills, dwell times."""

import pickle

from engine.core import MemoryStore, ScoringCore
from models.refdata import ModelEnv, ReferenceData
from tests.rulekit import rule, vehicle

SQUARE = {"name": "Depot", "kind": "facility",
          "polygon": [[10.0, 100.0], [10.0, 100.01], [10.01, 100.01], [10.01, 100.0]]}
SCHOOL = {"name": "School", "kind": "school", "center": {"lat": 20.0, "lon": 100.0},
          "radius_m": 300}


def geofence(reference, **params):
    compiled = rule(id="test.geo", source="events.hazchem.vehicle", kind="geofence", **params)
    return compiled.with_env(ModelEnv(reference=reference))


def zones(**records):
    ref = ReferenceData()
    for key, record in records.items():
        ref.put("reference.zones", key, record)
    return ref


def run(core, events):
    alerts = []
    for ev in events:
        alerts += core.advance(ev.ts)
        alerts += core.process([ev])
    return [(a.state, a.last_ts, a.evidence.get("zone_id")) for a in alerts]


def test_polygon_inside_and_outside():
    core = ScoringCore([geofence(zones(D=SQUARE), mode="inside", zones=["facility"])],
                       MemoryStore())
    assert run(core, [vehicle(0, lat=9.999, lon=100.005), vehicle(1, lat=10.005, lon=100.005),
                      vehicle(2, lat=10.005, lon=100.0101)]) == [
        ("firing", 1.0, "D"), ("resolved", 2.0, None)]


def test_outside_mode_with_a_condition_on_the_event():
    core = ScoringCore([geofence(zones(D=SQUARE), mode="outside", zones=["facility"],
                                 when="valve_open == true")], MemoryStore())
    assert run(core, [vehicle(0, lat=10.005, lon=100.005, valve_open=True),
                      vehicle(1, lat=11.0, lon=100.0, valve_open=False),
                      vehicle(2, lat=11.0, lon=100.0, valve_open=True),
                      vehicle(3, lat=10.005, lon=100.005, valve_open=True)]) == [
        ("firing", 2.0, None), ("resolved", 3.0, "D")]


def test_dwell_counts_from_entering_the_same_zone():
    core = ScoringCore([geofence(zones(S=SCHOOL), mode="dwell", zones=["school"],
                                 dwell="10m")], MemoryStore())
    inside = {"lat": 20.0, "lon": 100.0}
    assert run(core, [vehicle(0, **inside), vehicle(599, **inside), vehicle(600, **inside),
                      vehicle(700, lat=21.0, lon=100.0), vehicle(800, **inside),
                      vehicle(1399, **inside)]) == [("firing", 600.0, "S"),
                                                    ("resolved", 700.0, None)]


def test_zone_changes_in_reference_data_take_effect():
    ref = ReferenceData()
    core = ScoringCore([geofence(ref, mode="inside", zones=["school"])], MemoryStore())
    assert run(core, [vehicle(0, lat=20.0, lon=100.0)]) == []
    ref.put("reference.zones", "S", SCHOOL)
    assert run(core, [vehicle(1, lat=20.0, lon=100.0)]) == [("firing", 1.0, "S")]


def test_off_route_by_distance_to_the_waybill_route():
    ref = ReferenceData()
    ref.put("events.hazchem.waybill", "W1",
            {"route": [{"lat": 30.0, "lon": 120.0}, {"lat": 30.1, "lon": 120.0}]})
    core = ScoringCore([geofence(ref, mode="off_route", distance_m=500)], MemoryStore())
    # 0.005° of longitude at 30°N is 482 m; 0.0053° is 511 m
    alerts = run(core, [vehicle(0, lat=30.05, lon=120.005, waybill_id="W1"),
                        vehicle(1, lat=30.05, lon=120.0053, waybill_id="W1"),
                        vehicle(2, lat=30.05, lon=120.0053, waybill_id="W-none")])
    assert alerts == [("firing", 1.0, None)]


def test_dwell_state_pickles():
    store = MemoryStore()
    core = ScoringCore([geofence(zones(S=SCHOOL), mode="dwell", zones=["school"],
                                 dwell="10m")], store)
    run(core, [vehicle(0, lat=20.0, lon=100.0)])
    store.data = pickle.loads(pickle.dumps(store.data))
    assert run(core, [vehicle(600, lat=20.0, lon=100.0)]) == [("firing", 600.0, "S")]
