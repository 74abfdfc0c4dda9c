"""deadline: an open item reaching the due time it carries, from the clock and at events."""

import pickle

from engine.core import MemoryStore, ScoringCore
from tests.rulekit import drive, event, rule

GOV = "events.gov.workitem"
T0 = 1_717_376_400.0  # 2024-06-03T09:00:00+08:00


def item(ts, status="received", **fields):
    fields.setdefault("item_id", "A1")
    fields.setdefault("kind", "approval")
    fields.setdefault("dept", "d")
    return event(GOV, ts, status=status, **fields)


def deadline(**extra):
    return rule(id="test.deadline", source=GOV, kind="deadline", field="due_at",
                open_when='status != "done"', **extra)


def run(core, events, until=None):
    alerts = drive(core, events, until)
    return [(a.state, a.last_ts - T0) for a in alerts]


def test_fires_from_the_clock_at_the_due_time_and_clears_when_done():
    core = ScoringCore([deadline()], MemoryStore())
    alerts = run(core, [item(T0, due_at=T0 + 7200), item(T0 + 9000, "done")])
    assert alerts == [("firing", 7200.0), ("resolved", 9000.0)]


def test_the_clock_fires_once_past_the_due_time_and_the_alert_bears_the_due_time():
    core = ScoringCore([deadline()], MemoryStore())
    assert run(core, [item(T0, due_at=T0 + 7200)], until=T0 + 7200) == []
    assert run(core, [], until=T0 + 7201) == [("firing", 7200.0)]


def test_lead_fires_that_long_before_the_due_time():
    core = ScoringCore([deadline(lead="1h")], MemoryStore())
    assert run(core, [item(T0, due_at=T0 + 7200)], until=T0 + 10_000) == [("firing", 3600.0)]


def test_done_before_the_limit_stays_silent():
    core = ScoringCore([deadline()], MemoryStore())
    assert run(core, [item(T0, due_at=T0 + 7200), item(T0 + 7199, "done")],
               until=T0 + 20_000) == []


def test_an_extension_moves_the_limit_and_clears_a_firing_alert():
    core = ScoringCore([deadline()], MemoryStore())
    alerts = run(core, [item(T0, due_at=T0 + 3600), item(T0 + 5000, "accepted", due_at=T0 + 9000)],
                 until=T0 + 20_000)
    assert alerts == [("firing", 3600.0), ("resolved", 5000.0), ("firing", 9000.0)]


def test_an_item_arriving_after_its_due_time_fires_at_once():
    core = ScoringCore([deadline()], MemoryStore())
    assert run(core, [item(T0, due_at=T0 - 60)]) == [("firing", 0.0)]


def test_event_without_the_field_keeps_the_earlier_due_time():
    core = ScoringCore([deadline()], MemoryStore())
    assert run(core, [item(T0, due_at=T0 + 600), item(T0 + 60, "accepted")],
               until=T0 + 1000) == [("firing", 600.0)]


def test_state_pickles():
    compiled = deadline()
    model = compiled.model
    state = model.new_state()
    model.learn_one(state, item(T0, due_at=T0 + 600))
    again = pickle.loads(pickle.dumps(state))
    assert model.next_deadline(again) == T0 + 600
