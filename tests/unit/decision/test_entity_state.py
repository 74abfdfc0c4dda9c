"""``EntityState``: one key's rule states and origin marks, and state pickled before it existed
(a dict of rule states with the marks under ``"~origins"``, severities by name) still loads."""

from __future__ import annotations

import base64
import pickle

from engine.core import MemoryStore, ScoringCore
from engine.entity_state import EntityState, RuleState, as_entity_state
from tests.rulekit import FACILITY, drive, rule, tank
from topics.records import Severity

LEVEL = rule(id="test.tank.level_high", source=FACILITY, kind="threshold",
             condition="level_pct >= 90", severity="yellow", clear="level_pct < 85",
             escalate=[{"severity": "red", "when": "level_pct >= 98"}])

OLD_STREAMS = base64.b64decode(
    "gAWVPgEAAAAAAAB9lIwXZXZlbnRzLmhhemNoZW0uZmFjaWxpdHmUfZQojAh+b3JpZ2luc5SMC2VuZ2luZS5jb3Jl"
    "lIwJUnVsZVN0YXRllJOUKH2UjAhmYWNpbGl0eZRLAIaUSwhzjA9lbmdpbmUuZGVjaXNpb26UjA1EZWNpc2lvblN0"
    "YXRllJOUKE6JTk5OTk5OTk5LAE50lFKUR//wAAAAAAAATnSUUpSMHXRlc3QudGFuay5sZXZlbF9oaWdoQDMwNGYw"
    "YWNllGgGKE5oDChHAAAAAAAAAACIjBhjMjM3YmE5YTljZTQzMDZiMTA1N2E1ODGURwAAAAAAAAAAR0AkAAAAAAAA"
    "fZSMCWxldmVsX3BjdJRHQFjAAAAAAABzTk5ORwAAAAAAAAAASwCMA3JlZJR0lFKUR0AkAAAAAAAATnSUUpR1cy4=")
"""What the version before ``EntityState`` wrote to the changelog for tank T1 after
``LEVEL`` saw events at offsets 7 (level 91: firing, yellow) and 8 (level 99: escalated to
red) of partition 0 of ``facility``."""


def test_an_entity_is_its_rule_states_by_key_and_keeps_its_origin_marks_apart():
    state = RuleState(model=None)
    entity = EntityState({"r@1": state})
    assert entity["r@1"] is state and list(entity) == ["r@1"] and len(entity) == 1
    assert not entity.repeated(("t", 0, 5)) and entity.repeated(("t", 0, 5))
    assert entity.repeated(("t", 0, 4)) and not entity.repeated(("t", 1, 4))
    assert entity.origins == {("t", 0): 5, ("t", 1): 4} and len(entity) == 1
    again = pickle.loads(pickle.dumps(entity, protocol=pickle.HIGHEST_PROTOCOL))
    assert type(again) is EntityState and again.origins == entity.origins


def test_an_entity_pickled_by_the_version_before_loads_and_carries_on():
    ((stream, old),) = pickle.loads(OLD_STREAMS).items()
    assert type(old) is dict and "~origins" in old
    entity = as_entity_state(old)
    assert entity.origins == {("facility", 0): 8} and list(entity) == [LEVEL.state_key]
    decision = entity[LEVEL.state_key].decision
    assert decision.firing and decision.severity is Severity.RED
    # The worker's store hands the core such entities as they were unpickled.
    store = MemoryStore()
    store.data[(stream, "T1")] = old
    core = ScoringCore([LEVEL], store)
    assert core.process([tank(20, level_pct=99)], origins=[("facility", 0, 8)]) == []
    assert core.repeated == 1  # the old marks still drop a repeat
    alerts = drive(core, [tank(30, level_pct=50)])
    assert [(a.state, a.severity, a.alert_id) for a in alerts] == [
        ("resolved", Severity.RED, decision.alert_id)]
    assert type(store.data[(stream, "T1")]) is EntityState
