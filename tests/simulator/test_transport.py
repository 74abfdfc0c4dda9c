"""The transport simulator: deterministic, valid events, and its incidents are detected."""

from __future__ import annotations

import pytest

from bench.quality import run_quality
from simulator.base import SimContext, parse_start
from simulator.departments.transport import Transport
from tests.simkit import RULES, context, decoded, sliced

START = parse_start("2024-06-03T06:00:00")


def _ctx(seed: int = 5) -> SimContext:
    return context(seed, 12, "2024-06-03T06:00:00")


def test_same_seed_same_plan_and_events_however_the_run_is_cut() -> None:
    a, b = Transport(_ctx()), Transport(_ctx())
    assert [i.as_json() for i in a.plan()] == [i.as_json() for i in b.plan()]
    whole = sliced(a, [START + 3600, START + 3 * 3600])
    assert whole == sliced(b, [START + 3600, START + 2 * 3600 + 17, START + 3 * 3600])
    assert len(whole) > 1000


def test_events_validate_and_incident_keys_are_model_keys() -> None:
    dept = Transport(_ctx())
    incidents = dept.plan()
    models = {i.model_id for i in incidents}
    assert "transport.bus.bunching" in models and "transport.school_bus.off_route" in models
    for envelope in dept.events(START, START + 4 * 3600, incidents):
        decoded(envelope)
    road = [i for i in incidents if i.model_id.startswith("transport.road")]
    assert len({i.key for i in road}) == len(road)  # one segment per road incident


@pytest.mark.slow
def test_incidents_are_detected_by_their_models() -> None:
    scores, meta = run_quality(seed=3, start="2024-06-03T06:00:00", duration="12h",
                               departments=["transport"], rules_dir=RULES)
    assert meta["bad"] == 0
    for model in ("transport.road.congestion", "transport.road.sudden_speed_drop",
                  "transport.road.closed_flow", "transport.road.sensor_offline",
                  "transport.coach.overspeed", "transport.coach.overcrowded",
                  "transport.school_bus.off_route", "transport.bus.bunching"):
        score = scores[model]
        assert score.incidents == 2, model
        assert score.detected == 2, model
        assert score.alerts == 2, model  # the background raises no false alarm for these
