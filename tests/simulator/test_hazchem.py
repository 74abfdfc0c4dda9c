"""The hazardous-chemicals simulator: deterministic, valid events, incidents the rules catch."""

import pytest

from bench.quality import run_quality
from engine.rule_files.loader import load_rules
from simulator.base import parse_start
from simulator.departments.hazchem import FACILITY, VEHICLE, WAYBILL, Hazchem
from tests.simkit import RULES, context, decoded, sliced

START = parse_start("2024-06-03T00:00:00")


def _dept(seed: int = 7) -> Hazchem:
    return Hazchem(context(seed, 24))


@pytest.mark.slow
def test_same_seed_same_events_whatever_the_slicing():
    t0, t1 = START + 8 * 3600, START + 10 * 3600
    whole = sliced(_dept(), [t0, t1])
    halves = sliced(_dept(), [t0, t0 + 3600]) + sliced(_dept(), [t0 + 3600, t1])
    assert whole and whole == sorted(halves)
    assert [i.as_json() for i in _dept().plan()] == [i.as_json() for i in _dept().plan()]
    assert whole != sliced(_dept(seed=8), [t0, t1])


def test_events_validate_and_every_topic_is_used():
    dept = _dept()
    events = list(dept.events(START + 7 * 3600, START + 13 * 3600, dept.plan()))
    topics = set()
    for envelope in events:
        decoded(envelope)
        topics.add(envelope.topic)
    assert {VEHICLE, FACILITY, WAYBILL} <= topics


def test_every_hazchem_model_has_planned_incidents():
    models = {r.id for r in load_rules([RULES]).rules if r.file.parent.name == "hazchem"}
    planned = {i.model_id for i in _dept().plan()}
    assert models - planned == set()
    assert planned - models == set()


def test_a_quarter_of_the_fleet_and_every_second_overspeed_report_no_road_class():
    dept = _dept()
    plan = dept.plan()
    events = [e for e in dept.events(START, START + 86400, plan) if e.topic == VEHICLE]
    without = {e.key for e in events if "road_class" not in e.value}
    assert {k for k in without if k.startswith("HV-")} == {
        "HV-004", "HV-008", "HV-012", "HV-016", "HV-020", "HV-024"}
    speeding = {i.key: i.extra["n"] for i in plan if "companion" not in i.extra
                and i.model_id in ("hazchem.vehicle.overspeed_highway",
                                   "hazchem.vehicle.overspeed_sustained")}
    assert sorted(speeding.values()) == [0, 0, 1, 1]
    assert {k for k in without if k in speeding} == {k for k, n in speeding.items() if n == 1}


@pytest.fixture(scope="module")
def quality():
    scores, meta = run_quality(seed=3, start="2024-06-03T00:00:00", duration="6h",
                               departments=["hazchem"], rules_dir=RULES)
    return scores, meta


@pytest.mark.slow
@pytest.mark.parametrize("model", [
    "hazchem.tank.gas_first_alarm", "hazchem.tank.sensor_offline",
    "hazchem.tank.level_falling_no_transfer", "hazchem.grid.alarm_storm",
    "hazchem.vehicle.off_route", "hazchem.vehicle.harsh_braking",
    "hazchem.vehicle.no_active_waybill", "hazchem.vehicle.fatigue_driving",
    "hazchem.vehicle.overspeed_highway", "hazchem.vehicle.overspeed_sustained",
    "hazchem.waybill.route_restricted", "hazchem.waybill.outside_window",
])
def test_planned_incidents_are_detected(quality, model):
    scores, _ = quality
    assert scores[model].incidents >= 2
    assert scores[model].detected == scores[model].incidents


@pytest.mark.slow
def test_the_run_is_valid_and_mostly_detected(quality):
    scores, meta = quality
    assert meta["bad"] == 0
    hazchem = [s for m, s in scores.items() if m.startswith("hazchem.")]
    assert sum(s.detected for s in hazchem) >= 0.9 * sum(s.incidents for s in hazchem)
