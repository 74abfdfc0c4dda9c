"""What every model kind must do, checked the same way for each (as river's ``check_estimator``
checks every estimator): a rule file of the kind, played on the events of its own firing test.

- the same events give the same readings;
- ``score_one`` does not change the state;
- state pickled at any point of the stream and loaded again goes on with the same readings;
- an event without the field the kind watches is ``UNDECIDED``, never a breach or a clear;
- an event older than the key's newest changes nothing it should not.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import cache
from typing import Any

import pytest

from engine.offline.ruletest import with_test_reference
from engine.rule_files.loader import CompiledRule, load_rules
from models import KINDS
from models.base import UNDECIDED, Reading, Verdict
from tests.simkit import RULES
from topics.codec import Event, decode

MONTH = 30 * 86400.0


@dataclass(frozen=True)
class Case:
    rule: str
    """A rule file of the kind, under ``rules/``: realistic parameters and a test to play."""
    watched: str | None
    """The event field whose absence must leave the kind undecided; None where the kind judges
    no field (said why in ``CASES``)."""
    late: str
    """What an event a month older than the key's newest does: ``late`` (the kind says
    ``LATE``, and the engine does not learn it), ``unchanged`` (learning it leaves the state as
    it was: the kind ignores old events, or keeps no state), ``since`` (learning it moves only
    ``since``, when the key was first watched, back to it)."""


CASES: dict[str, Case] = {
    # absence watches that events arrive, not what they hold: any event of the key is the signal
    "absence": Case("environment/station_offline.yaml", None, "unchanged"),
    "anomaly": Case("hazchem/tank_pressure_anomaly.yaml", "pressure_kpa", "late"),
    "correlation": Case("cross/crowd_report_site_over_capacity.yaml", "kind", "late"),
    "deadline": Case("gov/approval_near_deadline.yaml", "due_at", "unchanged"),
    # drift's default (river's detectors: their own pickling tests in test_drift)
    "drift": Case("utilities/heating_return_temp_shift.yaml", "value", "late"),
    "flatline": Case("environment/emission_monitor_flatline.yaml", "value", "late"),
    "forecast": Case("health/ambulance_capacity_forecast.yaml", "value", "late"),
    "geofence": Case("hazchem/vehicle_off_route.yaml", "lat", "unchanged"),
    # joined reads reference data: its firing test brings the waybill the events name
    "joined": Case("hazchem/vehicle_cargo_mismatch.yaml", "cargo_un", "unchanged"),
    "lookup": Case("hazchem/company_blacklisted.yaml", "company_id", "unchanged"),
    # novelty's warm-up counts from the oldest event of the key, late or not
    "novelty": Case("hotline/new_category_spike.yaml", "category", "since"),
    "rate": Case("emergency/weather_warning_raised.yaml", "value", "late"),
    "sequence": Case("emergency/fire_alarm_unconfirmed.yaml", "kind", "late"),
    "surge": Case("hotline/category_surge.yaml", "category", "late"),
    "text": Case("hotline/elderly_welfare_keywords.yaml", "text", "unchanged"),
    "threshold": Case("emergency/flood_gauge_over_warning.yaml", "value", "unchanged"),
    "window": Case("hazchem/facility_multi_tank_alarm.yaml", "tank_id", "unchanged"),
}

KNOWN_BUGS: dict[tuple[str, str], str] = {}
"""(property, kind) pairs that fail because of a bug in the kind, each with what is wrong."""


def _cases(prop: str) -> list[Any]:
    return [pytest.param(kind, marks=pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[prop, kind]))
            if (prop, kind) in KNOWN_BUGS else kind for kind in sorted(CASES)]


@cache
def _rules() -> dict[str, CompiledRule]:
    return {str(r.file.relative_to(RULES)): r for r in load_rules([RULES]).rules}


@dataclass
class Played:
    rule: CompiledRule
    events: list[Event]
    until: float | None


@cache
def played(kind: str) -> Played:
    """The kind's rule (with its test's reference data) and the events of its firing test the
    rule's ``where`` lets through, as ``engine.offline.ruletest`` builds them."""
    rule = _rules()[CASES[kind].rule]
    assert rule.model.kind == kind
    test = next(t for t in rule.spec.tests if t.expect)
    rule = with_test_reference(rule, test)
    lines = [(at, fields, item.topic) for item in test.events for at, fields in item.expanded()]
    events = []
    for i, (at, own, topic) in enumerate(sorted(lines, key=lambda line: line[0])):
        fields = {**test.given, **own, "event_id": f"test-{i}", "source": "rule-test",
                  "ts": test.start + timedelta(seconds=at)}
        event = decode(topic or rule.spec.sources[0], fields)
        assert isinstance(event, Event), event
        if rule.where is None or rule.where.evaluate(event.data) is True:
            events.append(event)
    assert events
    until = None if test.until is None else test.start.timestamp() + test.until
    return Played(rule, events, until)


def key_of(rule: CompiledRule, event: Event) -> str:
    return str(event.data.get(rule.key_field, event.key))


def as_seen(reading: Reading) -> str:
    return repr((reading.verdict, reading.evidence, reading.at))


def play(p: Played, events: list[Event], states: dict[str, Any], stop: float | None = None
         ) -> list[str]:
    """Readings of ``events`` (and of the deadlines they pass, as the engine fires them), the
    states per key in ``states``; then of the deadlines before ``stop``."""
    model = p.rule.model
    seen: list[str] = []

    def deadlines(now: float) -> None:
        for key, state in states.items():
            for _ in range(100):  # a kind that keeps asking for the same deadline stops here
                due = model.next_deadline(state)
                if due is None or due >= now:
                    break
                seen.append(key + " " + as_seen(model.on_deadline(state, due)))
                if model.next_deadline(state) == due:
                    break

    for event in events:
        deadlines(event.ts)
        key = key_of(p.rule, event)
        state = states.setdefault(key, model.new_state())
        reading = model.score_one(state, event)
        seen.append(key + " " + as_seen(reading))
        if reading.verdict not in (Verdict.LATE, Verdict.SKIPPED):
            model.learn_one(state, event)
    if stop is not None:
        deadlines(stop)
    return seen


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_has_a_case(kind):
    assert kind in CASES


@pytest.mark.parametrize("kind", _cases("readings"))
def test_the_stream_says_something(kind):
    """The stream exercises the kind: some reading is not a HOLD."""
    p = played(kind)
    readings = play(p, p.events, {}, p.until)
    assert any("Verdict.HOLD" not in r for r in readings), readings


@pytest.mark.parametrize("kind", _cases("determinism"))
def test_the_same_events_give_the_same_readings(kind):
    p = played(kind)
    assert play(p, p.events, {}, p.until) == play(p, p.events, {}, p.until)


@pytest.mark.parametrize("kind", _cases("pure score"))
def test_score_one_leaves_the_state_as_it_was(kind):
    p = played(kind)
    model, states = p.rule.model, {}
    for event in p.events:
        state = states.setdefault(key_of(p.rule, event), model.new_state())
        before = pickle.dumps(state)
        reading = model.score_one(state, event)
        assert pickle.dumps(state) == before, event
        if reading.verdict not in (Verdict.LATE, Verdict.SKIPPED):
            model.learn_one(state, event)


@pytest.mark.parametrize("kind", _cases("resume"))
def test_state_pickled_anywhere_in_the_stream_resumes_with_the_same_readings(kind):
    p = played(kind)
    whole = play(p, p.events, {}, p.until)
    n = len(p.events)
    for cut in sorted({0, 1, n // 3, n // 2, 2 * n // 3, n - 1, n}):  # a long stream: a few
        states: dict[str, Any] = {}
        first = play(p, p.events[:cut], states)
        resumed = pickle.loads(pickle.dumps(states))
        assert first + play(p, p.events[cut:], resumed, p.until) == whole, cut


# Kinds whose reading of an event lacking the field is the ``UNDECIDED`` object (counted for the
# rule); the others say a plain HOLD, which the decision layer takes the same way.
COUNTED_UNDECIDED = {"anomaly", "drift", "flatline", "forecast", "geofence", "lookup", "rate",
                     "threshold"}
# joined's condition is the rule's CEL over the event and its record, where a missing field is
# null: ``cargo_un != waybill.cargo_un`` holds for null, so the rule's ``where: cargo_un != null``
# is what keeps such an event from the model; the rule, not the kind, gives no verdict.
GUARDED_BY_WHERE = {"joined"}
# deadline keeps the due time an earlier event brought when a later one lacks it (documented):
# only a key with no due time yet has nothing to judge; and an event closing the item closes it
# whatever its due time.
KEEPS_THE_LAST = {"deadline"}


@pytest.mark.parametrize("kind", _cases("undecided"))
def test_an_event_without_the_watched_field_gives_no_verdict(kind):
    watched = CASES[kind].watched
    p = played(kind)
    model = p.rule.model
    if watched is None:
        # the kind judges no field of the event (see CASES): it declares none
        assert not model.event_fields and not any(
            getattr(model.params, name, None) for name in model.event_expressions)
        return
    states: dict[str, Any] = {}
    tried = 0
    for event in p.events:
        if watched in event.data:
            lacking = replace(event, data={k: v for k, v in event.data.items() if k != watched})
            state = states.setdefault(key_of(p.rule, event), model.new_state())
            if kind in KEEPS_THE_LAST:
                state = model.new_state()
                closes = model.score_one(state, event).evidence.get("closed")
            if kind in KEEPS_THE_LAST and closes:
                assert model.score_one(state, lacking).verdict is Verdict.CLEAR
            elif kind in GUARDED_BY_WHERE:
                assert p.rule.where is not None and p.rule.where.evaluate(lacking.data) is not True
            elif kind in COUNTED_UNDECIDED:
                assert model.score_one(state, lacking) is UNDECIDED, event
            else:
                assert model.score_one(state, lacking).verdict is Verdict.HOLD, event
            tried += 1
        play(p, [event], states)
    assert tried


@pytest.mark.parametrize("kind", _cases("late"))
def test_an_event_older_than_the_newest_changes_nothing_it_should_not(kind):
    p = played(kind)
    model = p.rule.model
    states: dict[str, Any] = {}
    play(p, p.events, states)
    newest = p.events[-1]
    old = replace(newest, ts=newest.ts - MONTH, data={**newest.data, "event_id": "late"})
    state = states[key_of(p.rule, newest)]
    if CASES[kind].late == "since":
        expected = pickle.dumps(replace(state, since=old.ts))
    else:
        expected = pickle.dumps(state)
    reading = model.score_one(state, old)
    if CASES[kind].late == "late":
        assert reading.verdict is Verdict.LATE, reading
    else:
        model.learn_one(state, old)
    assert pickle.dumps(state) == expected
