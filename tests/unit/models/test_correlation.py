"""correlation: signals of several topics about one key, within a time, across the core."""

import pickle

import pytest

from engine.core import MemoryStore, ScoringCore
from tests.rulekit import drive, event, rule

TICKETS, SENSORS, POLICE = ("events.hotline.ticket", "events.utilities.sensor",
                            "events.police.incident")


def corr(**extra):
    return rule(id="test.grid.gas", source=[TICKETS, SENSORS, POLICE], key="grid_id",
                kind="correlation", within="1h", summary="{grid_id}",
                signals={"smell": {"topic": TICKETS, "when": 'category == "gas_smell"'},
                         "drop": {"topic": SENSORS, "when": "value < 200.0"},
                         "police": {"topic": POLICE}}, **extra)


def ticket(ts, grid="G1", category="gas_smell"):
    return event(TICKETS, ts, ticket_id=f"K{ts}", grid_id=grid, category=category,
                 status="new")


def sensor(ts, value, grid="G1"):
    return event(SENSORS, ts, sensor_id="S1", grid_id=grid, network="gas",
                 metric="pressure_kpa", value=value)


def police(ts, grid="G1"):
    return event(POLICE, ts, incident_id=f"P{ts}", kind="gas", grid_id=grid)


def run(core, events, until=None):
    alerts = drive(core, events, until)
    return [(a.key, a.state, a.last_ts, a.evidence.get("met")) for a in alerts]


def test_two_of_three_signals_within_the_hour_fire_and_age_out():
    core = ScoringCore([corr(require=2)], MemoryStore())
    assert run(core, [ticket(0), sensor(3599, 150.0)], until=10_000) == [
        ("G1", "firing", 3599.0, 2), ("G1", "resolved", 3600.0, 1)]


def test_one_signal_at_the_edge_of_the_window_does_not_count():
    core = ScoringCore([corr(require=2)], MemoryStore())
    assert run(core, [ticket(0), sensor(3600, 150.0)], until=10_000) == []


def test_by_default_every_signal_is_required():
    core = ScoringCore([corr()], MemoryStore())
    assert run(core, [ticket(0), sensor(60, 150.0)]) == []
    assert run(core, [police(120)])[0][:2] == ("G1", "firing")


def test_events_not_matching_a_signal_and_other_grids_say_nothing():
    core = ScoringCore([corr(require=2)], MemoryStore())
    assert run(core, [ticket(0), ticket(10, category="noise"), sensor(20, 250.0),
                      sensor(30, 150.0, grid="G2")]) == []


def test_late_events_are_counted_within_lateness_and_reported_beyond():
    late = []
    core = ScoringCore([corr(require=2, lateness="5m")], MemoryStore(),
                       on_unused=lambda r, rd: late.append(rd.evidence["late_by_s"]))
    # the late ticket completes the pair; the alert bears the time the pair was complete
    assert run(core, [sensor(1000, 150.0), ticket(800)]) == [("G1", "firing", 1000.0, 2)]
    assert run(core, [police(600)]) == []
    assert late == [400.0]


def test_by_default_signals_may_arrive_in_any_order_within_the_window():
    core = ScoringCore([corr(require=2)], MemoryStore())
    assert run(core, [sensor(3000, 150.0), ticket(0)], until=10_000) == [
        ("G1", "firing", 3000.0, 2), ("G1", "resolved", 3600.0, 1)]


def test_state_pickles_mid_stream():
    store = MemoryStore()
    core = ScoringCore([corr(require=2)], store)
    run(core, [ticket(0)])
    store.data = pickle.loads(pickle.dumps(store.data))
    assert run(core, [sensor(100, 150.0)])[0][:2] == ("G1", "firing")


def test_a_signal_topic_must_be_a_source():
    with pytest.raises(AssertionError, match="not one of the rule's source topics"):
        rule(id="test.bad", source=[TICKETS, SENSORS], key="grid_id", kind="correlation",
             within="1h", signals={"a": {"topic": TICKETS}, "b": {"topic": POLICE}})
