"""The scoring core: routing, decisions, stable ids, deadlines, state through a store."""

import pickle

from engine.core import MemoryStore, ScoringCore
from tests.rulekit import FACILITY, VEHICLE, drive, rule, tank, vehicle

LEVEL_HIGH = {"id": "test.tank.level_high", "source": FACILITY, "kind": "threshold",
              "condition": "level_pct >= 90", "clear": "level_pct < 85", "for": "60s"}


def run(core, events):
    return drive(core, events)


def test_for_duration_fires_at_the_first_event_past_it_and_hysteresis_holds():
    core = ScoringCore([rule(**LEVEL_HIGH)], MemoryStore())
    alerts = run(core, [tank(0, level_pct=91), tank(59, level_pct=92), tank(60, level_pct=93),
                        tank(90, level_pct=87), tank(120, level_pct=84)])
    assert [(a.state, a.first_ts, a.last_ts) for a in alerts] == [
        ("firing", 0.0, 60.0), ("resolved", 0.0, 120.0)]
    assert alerts[0].alert_id == alerts[1].alert_id
    assert alerts[0].evidence["level_pct"] == 93.0
    assert alerts[0].evidence["condition"]["condition"] == "level_pct >= 90"


def test_a_dip_below_the_condition_restarts_the_for_clock():
    core = ScoringCore([rule(**LEVEL_HIGH | {"clear": None})], MemoryStore())
    alerts = run(core, [tank(0, level_pct=91), tank(50, level_pct=89), tank(60, level_pct=91),
                        tank(110, level_pct=91), tank(120, level_pct=91)])
    assert [(a.state, a.first_ts, a.last_ts) for a in alerts] == [("firing", 60.0, 120.0)]


def test_alert_ids_are_stable_across_replays_and_differ_per_episode_and_key():
    events = [tank(0, level_pct=95), tank(60, level_pct=95), tank(70, level_pct=50),
              tank(100, level_pct=95), tank(200, level_pct=95),
              tank(0, tank_id="T2", level_pct=95), tank(60, tank_id="T2", level_pct=95)]
    first = run(ScoringCore([rule(**LEVEL_HIGH)], MemoryStore()), events)
    again = run(ScoringCore([rule(**LEVEL_HIGH)], MemoryStore()), events)
    assert [a.alert_id for a in first] == [a.alert_id for a in again]
    ids = [(a.key, a.state, a.alert_id) for a in first]
    assert len({i for k, s, i in ids}) == 3  # T1 twice (two episodes), T2 once
    assert [(k, s) for k, s, _ in ids] == [("T1", "firing"), ("T1", "resolved"),
                                           ("T1", "firing"), ("T2", "firing")]


def test_events_go_only_to_rules_of_their_topic_and_where_filters():
    rules = [rule(**LEVEL_HIGH | {"for": "0s"}),
             rule(id="test.vehicle.fast", source=VEHICLE, kind="threshold",
                  condition="speed_kmh > 80", where='road_class == "highway"')]
    core = ScoringCore(rules, MemoryStore())
    alerts = run(core, [vehicle(0, speed_kmh=90, road_class="urban"),
                        vehicle(1, speed_kmh=90, road_class="highway"),
                        tank(2, level_pct=10)])
    assert [(a.model_id, a.key) for a in alerts] == [("test.vehicle.fast", "V1")]


def test_window_keyed_by_another_field_counts_across_tanks_of_one_facility():
    alarms = rule(id="test.facility.alarms", source=FACILITY, key="facility_id",
                  kind="window", where="lel_pct >= 25", aggregate="count", size="10m",
                  condition="value >= 2")
    core = ScoringCore([alarms], MemoryStore())
    alerts = run(core, [tank(0, "T1", "F1", lel_pct=30), tank(60, "T2", "F2", lel_pct=30),
                        tank(120, "T3", "F1", lel_pct=10), tank(599, "T4", "F1", lel_pct=26)])
    assert [(a.key, a.state, a.last_ts, a.evidence["value"]) for a in alerts] == [
        ("F1", "firing", 599.0, 2)]
    # the worker re-keys an event only when a rule of the stream would see it
    assert core.stream_keys(tank(0, "T9", "F7", lel_pct=30)) == [("by:facility_id", "F7")]
    assert core.stream_keys(tank(0, "T9", "F7", lel_pct=3)) == []
    assert core.stream_keys(tank(0, "T9", "F7")) == []  # no reading: the `where` is undecided


def test_a_re_keyed_event_delivered_again_is_applied_once_per_entity():
    """After a rebalance a source is read again from its committed offset and its events are
    forwarded again; each entity drops the ones it applied (its mark is part of its state)."""
    alarms = rule(id="test.facility.alarms", source=FACILITY, key="facility_id",
                  kind="window", aggregate="count", size="10m", condition="value >= 3")
    store = MemoryStore()
    events = [tank(0, "T1", "F1"), tank(10, "T2", "F1"), tank(20, "T3", "F1")]
    origins = [(FACILITY, 0, 100), (FACILITY, 1, 7), (FACILITY, 0, 101)]
    first = ScoringCore([alarms], store)
    assert first.process(events[:2], origins=origins[:2]) == []
    # a new owner with the same store: the first two come again, then the third
    again = ScoringCore([alarms], store)
    alerts = again.process(events, origins=origins)
    assert [(a.key, a.state, a.last_ts) for a in alerts] == [("F1", "firing", 20.0)]
    # without origins (replay: every event once, in order) nothing is dropped
    plain = ScoringCore([alarms], MemoryStore())
    assert [a.last_ts for a in plain.process(events[:2] + events[:1])] == [10.0]
    # the mark is not a rule's state: the sweep keeps it while the entity has any
    assert again.sweep(0.0) == 0


def test_events_of_one_key_arriving_out_of_order_give_the_in_order_alerts():
    # Events of one key reach the core through different partitions (a producer that does not
    # key by the entity, a rule keyed by another field), so their arrival order is arbitrary.
    level = rule(**LEVEL_HIGH | {"for": "30s", "summary": "tank {tank_id} at {level_pct}%"})
    alarms = rule(id="test.facility.alarms", source=FACILITY, key="facility_id",
                  kind="window", where="lel_pct >= 25", aggregate="count", size="10m",
                  condition="value >= 2")
    in_order = [tank(0, level_pct=99.0), tank(40, level_pct=99.5),
                tank(100, "T2", lel_pct=30), tank(200, "T3", lel_pct=40)]

    def alerts(events):
        core = ScoringCore([level, alarms], MemoryStore())
        out = [a for ev in events for a in core.process([ev])] + core.advance(10_000)
        return sorted((a.model_id, a.key, a.state, a.first_ts, a.last_ts, a.summary)
                      for a in out)

    expected = alerts(in_order)
    assert expected == [
        ("test.facility.alarms", "F1", "firing", 200.0, 200.0, "F1"),
        ("test.facility.alarms", "F1", "resolved", 200.0, 700.0, "F1"),
        ("test.tank.level_high", "T1", "firing", 0.0, 40.0, "tank T1 at 99.5%")]
    assert alerts(in_order[::-1]) == expected
    assert alerts([in_order[1], in_order[3], in_order[0], in_order[2]]) == expected


def test_a_late_reading_older_than_a_newer_one_of_the_other_kind_changes_nothing():
    core = ScoringCore([rule(**LEVEL_HIGH)], MemoryStore())
    # firing at 60; a clear reading from 30 s arrives after it: the newer breach stands
    alerts = run(core, [tank(0, level_pct=91), tank(60, level_pct=93), tank(30, level_pct=80)])
    assert [(a.state, a.first_ts, a.last_ts) for a in alerts] == [("firing", 0.0, 60.0)]
    # a breach from before the clear at 120 cannot re-open what that clear resolved
    alerts = run(core, [tank(120, level_pct=80), tank(100, level_pct=95)])
    assert [(a.state, a.last_ts) for a in alerts] == [("resolved", 120.0)]


def test_absence_fires_from_the_clock_and_clears_on_the_next_event():
    lost = rule(id="test.vehicle.gps_lost", source=VEHICLE, kind="absence", timeout="10m",
                arm_when="ignition == true", summary="{plate} silent")
    core = ScoringCore([lost], MemoryStore())
    alerts = run(core, [vehicle(0, ignition=True, plate="浙A1"),
                        vehicle(0, "V2", ignition=True), vehicle(300, "V2", ignition=False)])
    assert core.advance(600) == []            # exactly 10 min: not yet longer than the timeout
    alerts += core.advance(601)
    assert [(a.key, a.state, a.last_ts, a.summary) for a in alerts] == [
        ("V1", "firing", 600.0, "浙A1 silent")]
    assert core.advance(10_000) == []        # fires once per silence
    alerts = core.process([vehicle(10_001, ignition=True)])
    assert [(a.key, a.state, a.first_ts, a.last_ts) for a in alerts] == [
        ("V1", "resolved", 600.0, 10_001.0)]


def test_a_deadline_alert_shows_the_newest_event_and_of_two_at_one_time_the_later_read():
    lost = rule(id="test.vehicle.gps_lost", source=VEHICLE, kind="absence", timeout="10m",
                summary="{plate} silent")
    core = ScoringCore([lost], MemoryStore())
    core.process([vehicle(5, plate="new"), vehicle(0, plate="older"), vehicle(5, plate="later")])
    assert [a.summary for a in core.advance(1_000)] == ["later silent"]


def test_an_event_too_late_for_a_rule_is_not_learned_nor_judged():
    braking = rule(id="test.vehicle.harsh_braking", source=VEHICLE, kind="rate",
                   field="speed_kmh", within="3s", condition="fall > 30", lateness="1s")
    learned = []
    learn_one = braking.model.learn_one
    braking.model.learn_one = lambda state, event: (learned.append(event.ts),
                                                    learn_one(state, event))
    late = []
    store = MemoryStore()
    core = ScoringCore([braking], store,
                       on_unused=lambda r, rd: late.append(rd.evidence["late_by_s"]))
    core.process([vehicle(t, speed_kmh=80.0) for t in range(6)])
    before = pickle.dumps(list(store.entities()))
    assert core.process([vehicle(2, speed_kmh=10.0)]) == []  # 3 s behind the newest
    assert late == [3.0]
    assert learned == [0, 1, 2, 3, 4, 5]
    assert pickle.dumps(list(store.entities())) == before


def test_deadlines_survive_a_restart_through_the_store():
    lost = rule(id="test.vehicle.gps_lost", source=VEHICLE, kind="absence", timeout="10m")
    store = MemoryStore()
    ScoringCore([lost], store).process([vehicle(0)])
    restarted = ScoringCore([lost], store)
    assert restarted.advance(700) == []      # a new core knows no deadlines until told
    restarted.reschedule_all()
    assert [a.key for a in restarted.advance(700)] == ["V1"]


class CountingStore(MemoryStore):
    def __init__(self):
        super().__init__()
        self.saves = 0

    def save(self, stream, key, entity):
        self.saves += 1
        super().save(stream, key, entity)


def test_a_batch_saves_each_touched_key_once():
    store = CountingStore()
    core = ScoringCore([rule(**LEVEL_HIGH), rule(**LEVEL_HIGH | {"id": "test.tank.other"})],
                       store)
    core.process([tank(t, "T1", level_pct=50) for t in range(100)] + [tank(0, "T2", level_pct=1)])
    assert store.saves == 2


def test_removed_rules_stop_and_kept_rules_keep_their_state():
    store = MemoryStore()
    core = ScoringCore([rule(**LEVEL_HIGH)], store)
    core.process([tank(0, level_pct=95)])
    core.set_rules([rule(**LEVEL_HIGH), rule(id="test.other", source=VEHICLE, kind="threshold",
                                             condition="speed_kmh > 1")])
    assert [a.state for a in core.process([tank(60, level_pct=95)])] == ["firing"]
    core.set_rules([])
    assert core.process([tank(120, level_pct=10)]) == []


def test_sweep_drops_idle_keys_and_removed_rules_but_keeps_firing_alerts():
    store = MemoryStore()
    short = rule(**LEVEL_HIGH | {"for": "0s", "state_ttl": "1h"})
    other = rule(id="test.other", source=FACILITY, kind="threshold", condition="temp_c > 50")
    core = ScoringCore([short, other], store)
    core.process([tank(0, "T1", level_pct=50, temp_c=20), tank(0, "T2", level_pct=99),
                  tank(4000, "T3", level_pct=50)])
    core.set_rules([short])
    # at 7200 s: T1 idle 2h (dropped whole), T2 firing (kept), T3 idle 3200 s (kept); the
    # removed rule's state goes everywhere
    assert core.sweep(now=7200) == 4  # other@T1, other@T2, other@T3, level@T1
    assert sorted(k for (_, k) in store.data) == ["T2", "T3"]
    assert core.sweep(now=7700) == 1  # level@T3 is now idle for longer than 1h
    assert sorted(k for (_, k) in store.data) == ["T2"]


def test_decision_state_pickled_by_an_older_version_loads_with_defaults():
    import pickle

    from engine.decision import DecisionState

    state = DecisionState(pending_since=5.0, firing=True, alert_id="a", episode_start=5.0,
                          reopened=2, severity="red")
    again = pickle.loads(pickle.dumps(state))
    assert again == state
    old = pickle.loads(pickle.dumps(state))
    # what the version before lifecycle fields wrote: only the first six fields
    old.__setstate__([5.0, True, "a", 5.0, 9.0, {"x": 1}])
    assert (old.pending_since, old.firing, old.last_ts, old.evidence) == (5.0, True, 9.0, {"x": 1})
    assert (old.last_break, old.clearing_since, old.reopened, old.severity) == (None, None, 0, None)


def test_a_where_shared_by_rules_is_evaluated_once_per_event_and_each_rule_still_judges():
    shared = 'sensor_status == "ok"'
    rules = [rule(**LEVEL_HIGH | {"id": f"test.tank.level_{i}", "for": "0s", "where": shared,
                                  "condition": f"level_pct >= {80 + 5 * i}"})
             for i in range(3)]
    core = ScoringCore(rules, MemoryStore())
    (route,) = core._routes[FACILITY]
    plan = route.plan_for(tank(0, sensor_status="ok"))
    assert len(plan.conditions) == 1 and len(plan.steps) == 3
    evaluations = []
    condition = plan.conditions[0]
    real = condition.evaluate
    object.__setattr__(plan, "conditions", (_Counting(real, evaluations),))
    alerts = core.process([tank(0, sensor_status="ok", level_pct=87),
                           tank(0, "T2", sensor_status="ok", level_pct=70),
                           tank(0, "T3", sensor_status="fault", level_pct=99)])
    assert len(evaluations) == 2  # once per event, not per rule (T3 is none of theirs)
    assert [(a.model_id, a.key) for a in alerts] == [("test.tank.level_0", "T1"),
                                                      ("test.tank.level_1", "T1")]


class _Counting:
    def __init__(self, evaluate, calls):
        self._evaluate, self._calls = evaluate, calls

    def evaluate(self, data):
        self._calls.append(data)
        return self._evaluate(data)


def test_an_event_no_rule_sees_leaves_no_state_behind():
    where = rule(id="test.tank.ok", source=FACILITY, kind="threshold",
                 condition="level_pct >= 90", where='sensor_status == "ok"')
    store = MemoryStore()
    core = ScoringCore([where], store)
    core.process([tank(0, "T1", sensor_status="fault", level_pct=95),
                  tank(0, "T2", sensor_status="ok", level_pct=10)])
    assert sorted(k for (_, k) in store.data) == ["T2"]


def test_an_event_lacking_the_conditions_field_is_counted_undecided_and_taken_as_a_hold():
    # Without level_pct the condition is null: the rule says nothing. The pending breach
    # neither restarts (as a reading under 90 would) nor clears; the event is counted.
    core = ScoringCore([rule(**LEVEL_HIGH)], MemoryStore())
    alerts = run(core, [tank(0, level_pct=91), tank(30, temp_c=20.0), tank(60, level_pct=92),
                        tank(70, temp_c=21.0), tank(80, level_pct=84)])
    assert [(a.state, a.first_ts, a.last_ts) for a in alerts] == [
        ("firing", 0.0, 60.0), ("resolved", 0.0, 80.0)]
    assert core.undecided == {"test.tank.level_high": 2}
    assert core.unused == {}


def test_only_a_condition_the_fields_at_hand_cannot_decide_is_undecided():
    # ``lel_pct >= 25 || level_pct >= 95``: 30% LEL decides it without a level; 1% LEL does
    # not (the level might be 95%), so that reading says nothing and is counted.
    core = ScoringCore([rule(id="test.tank.alarm", source=FACILITY, kind="threshold",
                             condition="lel_pct >= 25 || level_pct >= 95")], MemoryStore())
    alerts = run(core, [tank(0, lel_pct=30.0), tank(10, lel_pct=1.0),
                        tank(20, lel_pct=1.0, level_pct=50.0)])
    assert [(a.state, a.last_ts) for a in alerts] == [("firing", 0.0), ("resolved", 20.0)]
    assert core.undecided == {"test.tank.alarm": 1}
