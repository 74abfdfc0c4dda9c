"""window and absence edge cases: boundaries, out-of-order and late events, timers, pickling."""

import pickle

from engine.core import MemoryStore, ScoringCore
from tests.rulekit import FACILITY, VEHICLE, drive, rule, tank, vehicle


def run(core, events, until=None):
    alerts = drive(core, events, until)
    return [(a.state, a.last_ts, a.evidence.get("value")) for a in alerts]


def window(**extra):
    return rule(id="test.window", source=FACILITY, kind="window", aggregate="sum",
                field="lel_pct", size="10m", condition="value >= 100", **extra)


def test_sliding_window_bounds_are_open_below_closed_above():
    core = ScoringCore([window()], MemoryStore())
    # 60 at 0 s and 40 at 600 s: the first has just left the 10-minute window
    assert run(core, [tank(0, lel_pct=60), tank(600, lel_pct=40)]) == []
    core = ScoringCore([window()], MemoryStore())
    assert run(core, [tank(0, lel_pct=60), tank(599, lel_pct=40)], until=10_000) == [
        ("firing", 599.0, 100.0), ("resolved", 600.0, 40.0)]


def test_out_of_order_events_within_lateness_are_counted_in_time_order():
    core = ScoringCore([window(lateness="2m")], MemoryStore())
    alerts = run(core, [tank(300, lel_pct=50), tank(200, lel_pct=30), tank(400, lel_pct=20)])
    assert alerts == [("firing", 400.0, 100.0)]


def test_tumbling_buckets_do_not_add_across_their_edge():
    core = ScoringCore([window(window="tumbling")], MemoryStore())
    assert run(core, [tank(590, lel_pct=60), tank(610, lel_pct=60)]) == []
    core = ScoringCore([window(window="tumbling")], MemoryStore())
    assert run(core, [tank(0, lel_pct=60), tank(599, lel_pct=40)], until=1000) == [
        ("firing", 599.0, 100.0), ("resolved", 600.0, None)]


def test_hopping_windows_fire_when_any_bucket_holding_the_event_does():
    core = ScoringCore([window(window="hopping", hop="5m")], MemoryStore())
    # buckets [300, 900) and [600, 1200) both hold 650; only [300, 900) also holds 310
    assert run(core, [tank(310, lel_pct=60), tank(650, lel_pct=40)])[0][:2] == (
        "firing", 650.0)


def test_window_state_pickles_mid_stream():
    store = MemoryStore()
    core = ScoringCore([window()], store)
    run(core, [tank(0, lel_pct=60)])
    store.data = pickle.loads(pickle.dumps(store.data))
    assert run(core, [tank(10, lel_pct=40)])[0][:2] == ("firing", 10.0)


def test_absence_ignores_a_late_event_and_keeps_its_deadline():
    lost = rule(id="test.lost", source=VEHICLE, kind="absence", timeout="5m")
    core = ScoringCore([lost], MemoryStore())
    assert run(core, [vehicle(100), vehicle(50)], until=401) == [("firing", 400.0, None)]


def test_absence_deadline_fires_from_the_clock_alone_once():
    lost = rule(id="test.lost", source=VEHICLE, kind="absence", timeout="5m")
    core = ScoringCore([lost], MemoryStore())
    run(core, [vehicle(0)])
    assert core.advance(300) == []
    assert [a.state for a in core.advance(300.5)] == ["firing"]
    assert core.advance(100_000) == []
