"""Reference data as of event time: a backlog is judged as it was live.

A restarted worker reads the whole waybill topic before it scores the backlog of vehicle
telemetry, so it holds waybills issued after the telemetry it is about to judge. Each waybill
version is in force from its own event time, so the joined and geofence rules give the alerts
they gave live, where events and waybills came interleaved."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.core import MemoryStore, ScoringCore
from engine.reference_records import track_lookup_event
from engine.rule_files.loader import load_rules
from models.refdata import VERSIONS_KEPT, ReferenceData
from tests.simkit import RULES, decoded, simulate
from topics.reference import LOOKUP_EVENT_TOPICS


def alerts_of(events: list, waybills_first: bool) -> list[tuple[str, str, str, float]]:
    loaded = load_rules([RULES / "hazchem", RULES / "reference"])
    reference = loaded.env.reference.copy()
    rules = [r.with_env(replace(r.model.env, reference=reference)) for r in loaded.rules]
    core = ScoringCore(rules, MemoryStore())
    if waybills_first:  # as the worker's reference reader has them after a restart
        for event in events:
            track_lookup_event(reference, event)
    out = []
    for event in events:
        if not waybills_first:
            track_lookup_event(reference, event)
        out += core.advance(event.ts)
        out += core.process((event,))
    return sorted((a.model_id, a.key, a.state, a.last_ts) for a in out)


@pytest.mark.slow
def test_telemetry_read_after_every_waybill_gives_the_alerts_of_the_live_order():
    _, envelopes = simulate("hazchem", 5, 8)
    events = [decoded(e) for e in envelopes]
    assert any(e.topic in LOOKUP_EVENT_TOPICS for e in events)
    live = alerts_of(events, waybills_first=False)
    backlog = alerts_of(events, waybills_first=True)
    joined = {"hazchem.vehicle.no_active_waybill", "hazchem.waybill.vehicle_double_booked",
              "hazchem.waybill.outside_window", "hazchem.vehicle.off_route"}
    assert {a[0] for a in live} & joined  # the run does exercise the waybill rules
    assert backlog == live


def test_a_record_is_judged_by_the_version_in_force_and_history_stays_bounded():
    ref = ReferenceData()
    ref.put("w", "W1", {"v": 1}, at=100.0)
    ref.put("w", "W2", {"v": 1}, at=300.0)
    ref.put("w", "W1", None, at=200.0)  # closed at 200
    ref.put("w", "W1", {"v": 0}, at=50.0)  # an older version read late slots in by its time
    assert [ref.get("w", "W1", at=t) for t in (10.0, 60.0, 150.0, 250.0)] == [
        None, {"v": 0}, {"v": 1}, None]
    assert dict(ref.items("w", at=150.0)) == {"W1": {"v": 1}}
    assert dict(ref.items("w", at=350.0)) == {"W2": {"v": 1}}
    assert ref.get("w", "W1") is None and dict(ref.items("w")) == {"W2": {"v": 1}}
    ref.put("zones", "Z1", {"name": "depot"})  # untimed: in force whenever asked
    assert ref.get("zones", "Z1", at=0.0) == {"name": "depot"}
    for n in range(3 * VERSIONS_KEPT):
        ref.put("w", "W3", {"v": n}, at=1000.0 + n)
    # The oldest version kept stands for everything before it: the key existed.
    assert ref.get("w", "W3", at=0.0) == {"v": 2 * VERSIONS_KEPT}
    assert ref.get("w", "W3", at=1000.0 + 3 * VERSIONS_KEPT) == {"v": 3 * VERSIONS_KEPT - 1}
    assert len(ref._versions["w"]["W3"]) == VERSIONS_KEPT
