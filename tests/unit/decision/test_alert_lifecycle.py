"""The alert's own life in the core: escalation, clear_for, cooldown, inhibition."""

import time
from pathlib import Path

import orjson
import pytest

from engine.core import MemoryStore, ScoringCore
from engine.offline.replay import replay
from engine.rule_files.loader import load_rules
from tests.rulekit import FACILITY, drive, rule, tank

RULES = Path(__file__).resolve().parents[3] / "rules"

LEVEL = {"id": "test.tank.level_high", "source": FACILITY, "kind": "threshold",
         "condition": "level_pct >= 90", "severity": "yellow",
         "summary": "tank {tank_id} at {level_pct}%"}


def run(core, events, until=None):
    return drive(core, events, until)


def story(alerts):
    return [(a.state, a.severity.value, a.last_ts) for a in alerts]


def test_a_level_condition_escalates_once_and_never_falls_back():
    core = ScoringCore([rule(**LEVEL, escalate=[
        {"severity": "orange", "when": "level_pct >= 95"},
        {"severity": "red", "when": "level_pct >= 98"}])], MemoryStore())
    alerts = run(core, [tank(0, level_pct=91), tank(10, level_pct=96), tank(20, level_pct=96.5),
                        tank(30, level_pct=92), tank(40, level_pct=99), tank(50, level_pct=50)])
    assert story(alerts) == [("firing", "yellow", 0.0), ("escalated", "orange", 10.0),
                             ("escalated", "red", 40.0), ("resolved", "red", 50.0)]
    assert len({a.alert_id for a in alerts}) == 1
    assert alerts[1].summary == "tank T1 at 96.0%"


def test_a_first_breach_already_at_a_higher_level_fires_at_that_level():
    core = ScoringCore([rule(**LEVEL, escalate=[
        {"severity": "red", "when": "level_pct >= 98"}])], MemoryStore())
    assert story(run(core, [tank(0, level_pct=99)])) == [("firing", "red", 0.0)]


def test_a_level_reached_by_time_alone_comes_from_the_clock():
    core = ScoringCore([rule(**LEVEL, escalate=[{"severity": "orange", "after": "30m"}])],
                       MemoryStore())
    alerts = run(core, [tank(0, level_pct=91)], until=1799)
    assert story(alerts) == [("firing", "yellow", 0.0)]
    alerts = core.advance(1801)
    assert story(alerts) == [("escalated", "orange", 1800.0)]
    assert alerts[0].summary == "tank T1 at 91.0%"  # the fields kept with the state


def test_clear_for_resolves_only_when_the_clear_lasts():
    core = ScoringCore([rule(**LEVEL, clear_for="10m")], MemoryStore())
    # clear at 60 s, breach again at 300 s (no new alert), clear at 400 s for good
    alerts = run(core, [tank(0, level_pct=91), tank(60, level_pct=80), tank(300, level_pct=93),
                        tank(400, level_pct=80)], until=2000)
    assert story(alerts) == [("firing", "yellow", 0.0), ("resolved", "yellow", 1000.0)]
    # with no clock in between, the next clear event resolves it, at its own time
    core = ScoringCore([rule(**LEVEL, clear_for="10m")], MemoryStore())
    alerts = [a for ev in [tank(0, level_pct=91), tank(60, level_pct=80), tank(700, level_pct=70)]
              for a in core.process([ev])]
    assert story(alerts) == [("firing", "yellow", 0.0), ("resolved", "yellow", 700.0)]


def test_cooldown_reopens_the_same_alert_instead_of_a_new_one():
    events = [tank(0, level_pct=91), tank(60, level_pct=80), tank(120, level_pct=95),
              tank(180, level_pct=80), tank(2000, level_pct=95)]
    alerts = run(ScoringCore([rule(**LEVEL, cooldown="15m")], MemoryStore()), events)
    assert [(a.state, a.reopened) for a in alerts] == [
        ("firing", 0), ("resolved", 0), ("firing", 1), ("resolved", 1), ("firing", 0)]
    ids = [a.alert_id for a in alerts]
    assert ids[0] == ids[1] == ids[2] == ids[3] != ids[4]
    without = run(ScoringCore([rule(**LEVEL)], MemoryStore()), events)
    assert len({a.alert_id for a in without}) == 3


def test_a_red_alert_inhibits_related_lower_alerts_for_the_same_key_only():
    leak = rule(id="test.tank.leak", source=FACILITY, kind="threshold", severity="red",
                condition="lel_pct >= 50", inhibits=["test.tank.*"])
    level = rule(**LEVEL)
    core = ScoringCore([leak, level], MemoryStore())
    alerts = run(core, [tank(0, lel_pct=60), tank(10, level_pct=95),
                        tank(20, "T2", level_pct=95), tank(30, lel_pct=0, level_pct=95)])
    got = [(a.model_id, a.key, a.state, a.inhibited_by) for a in alerts]
    red_id = alerts[0].alert_id
    assert got == [("test.tank.leak", "T1", "firing", None),
                   ("test.tank.level_high", "T1", "firing", red_id),
                   ("test.tank.level_high", "T2", "firing", None),
                   ("test.tank.leak", "T1", "resolved", None)]


def test_inhibition_sees_a_red_alert_raised_earlier_in_the_same_batch():
    leak = rule(id="test.tank.leak", source=FACILITY, kind="threshold", severity="red",
                condition="lel_pct >= 50", inhibits=["test.tank.level_high"])
    core = ScoringCore([leak, rule(**LEVEL)], MemoryStore())
    alerts = core.process([tank(0, lel_pct=60), tank(10, lel_pct=60, level_pct=95)])
    assert [(a.model_id, a.inhibited_by) for a in alerts] == [
        ("test.tank.leak", None), ("test.tank.level_high", alerts[0].alert_id)]


LEAK = {"id": "test.tank.leak", "source": FACILITY, "kind": "threshold", "severity": "red",
        "condition": "lel_pct >= 50", "inhibits": ["test.tank.level_high"]}


@pytest.mark.parametrize("red_first", [True, False], ids=["red rule first", "red rule last"])
def test_a_red_alert_raised_by_the_same_event_inhibits_whatever_the_rule_order(red_first):
    rules = [rule(**LEAK), rule(**LEVEL)]
    core = ScoringCore(rules if red_first else rules[::-1], MemoryStore())
    alerts = core.process([tank(0, lel_pct=60, level_pct=95)])
    red = next(a for a in alerts if a.model_id == "test.tank.leak")
    level = next(a for a in alerts if a.model_id == "test.tank.level_high")
    assert (red.inhibited_by, level.inhibited_by) == (None, red.alert_id)


@pytest.mark.parametrize("red_first", [True, False], ids=["red rule first", "red rule last"])
def test_a_red_alert_resolved_by_the_same_event_no_longer_inhibits(red_first):
    rules = [rule(**LEAK), rule(**LEVEL)]
    core = ScoringCore(rules if red_first else rules[::-1], MemoryStore())
    alerts = run(core, [tank(0, lel_pct=60), tank(10, lel_pct=0, level_pct=95)])
    assert sorted((a.model_id, a.state, a.inhibited_by) for a in alerts) == [
        ("test.tank.leak", "firing", None), ("test.tank.leak", "resolved", None),
        ("test.tank.level_high", "firing", None)]


@pytest.mark.parametrize("red_first", [True, False], ids=["red rule first", "red rule last"])
def test_a_red_alert_raised_after_a_lower_one_leaves_the_lower_one_dispatched(red_first):
    rules = [rule(**LEAK), rule(**LEVEL)]
    core = ScoringCore(rules if red_first else rules[::-1], MemoryStore())
    alerts = run(core, [tank(0, level_pct=95), tank(10, lel_pct=60, level_pct=95),
                        tank(20, lel_pct=60, level_pct=50)])
    red_id = alerts[1].alert_id
    assert [(a.model_id, a.state, a.inhibited_by) for a in alerts] == [
        ("test.tank.level_high", "firing", None), ("test.tank.leak", "firing", None),
        ("test.tank.level_high", "resolved", red_id)]


def test_a_first_reading_over_both_catalogue_tank_levels_dispatches_only_the_red_alert():
    loaded = load_rules([RULES / "hazchem" / "tank_level_high.yaml",
                         RULES / "hazchem" / "tank_level_high_high.yaml"])
    assert not loaded.errors
    # the catalogue's order: the yellow high-level rule is scored before the red high-high one
    assert [r.id for r in loaded.rules] == ["hazchem.tank.level_high",
                                            "hazchem.tank.level_high_high"]
    line = orjson.dumps({"topic": FACILITY, "key": "T1", "value": {
        "event_id": "e1", "ts": time.time(), "tank_id": "T1", "facility_id": "F1",
        "level_pct": 96.0}})
    alerts = replay([line], loaded.rules).alerts
    by_model = {a.model_id: a for a in alerts}
    assert [(a.model_id, a.severity.value) for a in alerts] == [
        ("hazchem.tank.level_high", "yellow"), ("hazchem.tank.level_high_high", "red")]
    red = by_model["hazchem.tank.level_high_high"]
    assert by_model["hazchem.tank.level_high"].inhibited_by == red.alert_id
    assert [a.model_id for a in alerts if not a.suppressed] == ["hazchem.tank.level_high_high"]
