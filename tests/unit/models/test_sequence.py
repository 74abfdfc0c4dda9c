"""sequence: A (not) followed by B within T — bounds, order, lateness, deadlines, restarts."""

import pickle
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.core import MemoryStore, ScoringCore
from engine.rule_files.loader import compile_rule_text
from models.base import Verdict
from models.sequence import Sequence, SequenceParams, SequenceState
from tests.rulekit import drive, event, rule, rule_text
from topics.codec import Event

REPORT = "events.emergency.report"
WORKITEM = "events.gov.workitem"


def model(mode="followed", within="3m", lateness=0, first='kind == "a"', then='kind == "b"'):
    return Sequence(SequenceParams(first=first, then=then, within=within, mode=mode,
                                   lateness=lateness))


def ev(ts, kind, **fields):
    return Event("t", "K", float(ts), {"kind": kind, **fields})


def feed(m, state, events):
    """Score then learn each event, as the engine does; the verdicts (LATE events not learnt)."""
    out = []
    for e in events:
        reading = m.score_one(state, e)
        out.append(reading.verdict.value)
        if reading.verdict is not Verdict.LATE:
            m.learn_one(state, e)
    return out


def alarm(ts, building="B1", kind="fire_alarm", **fields):
    return event(REPORT, ts, report_id=f"R{ts}", kind=kind, building_id=building, **fields)


def confirm(ts, building="B1", **fields):
    return alarm(ts, building, kind="fire_confirmed", **fields)


UNCONFIRMED = {"id": "test.fire.unconfirmed", "source": REPORT, "key": "building_id",
               "kind": "sequence", "mode": "not_followed", "first": 'kind == "fire_alarm"',
               "then": 'kind == "fire_confirmed"', "within": "3m",
               "summary": "{building_id} unconfirmed for {within}"}
FOLLOWED = UNCONFIRMED | {"id": "test.fire.confirmed_fast", "mode": "followed"}


def run(core, events, until=None):
    return drive(core, events, until)


def brief(alerts):
    return [(a.key, a.state, a.first_ts, a.last_ts) for a in alerts]


# -- followed --------------------------------------------------------------------------------

def test_followed_b_exactly_within_after_a_breaches_one_second_later_does_not():
    m = model()
    s = m.new_state()
    m.learn_one(s, ev(0, "a"))
    reading = m.score_one(s, ev(180, "b"))
    assert (reading.verdict, reading.evidence) == (
        Verdict.BREACH, {"first_at": 0.0, "then_at": 180.0, "gap_s": 180.0, "within": "3m"})
    assert m.score_one(s, ev(181, "b")).verdict is Verdict.CLEAR


def test_followed_b_answers_every_waiting_a_once_and_reports_the_earliest():
    m = model()
    s = m.new_state()
    assert feed(m, s, [ev(0, "a"), ev(60, "a")]) == ["clear", "clear"]
    reading = m.score_one(s, ev(120, "b"))
    assert reading.evidence == {"first_at": 0.0, "then_at": 120.0, "gap_s": 120.0,
                                "within": "3m"}
    assert feed(m, s, [ev(120, "b"), ev(130, "b"), ev(140, "other")]) == [
        "breach", "clear", "clear"]
    assert s.waiting == []


def test_followed_b_before_its_a_in_time_does_not_complete_a_sequence():
    m = model(lateness=60)
    s = m.new_state()
    assert feed(m, s, [ev(0, "b"), ev(10, "a"), ev(300, "b")]) == ["clear", "clear", "clear"]


def test_followed_a_and_b_at_the_same_instant_complete_in_either_arrival_order():
    for events in ([ev(50, "a"), ev(50, "b")], [ev(50, "b"), ev(50, "a")]):
        m = model()
        s = m.new_state()
        assert feed(m, s, events) == ["clear", "breach"]


def test_followed_late_a_meets_a_b_that_arrived_before_it():
    m = model(lateness=120)
    s = m.new_state()
    assert feed(m, s, [ev(100, "b")]) == ["clear"]
    reading = m.score_one(s, ev(40, "a"))
    assert (reading.verdict, reading.evidence) == (
        Verdict.BREACH, {"first_at": 40.0, "then_at": 100.0, "gap_s": 60.0, "within": "3m"})
    m.learn_one(s, ev(40, "a"))
    # A second late A joins the occurrence already reported: no new sequence, and it does not
    # wait for a later B either.
    assert feed(m, s, [ev(50, "a"), ev(200, "b")]) == ["clear", "clear"]


def test_followed_an_event_that_is_both_a_and_b_never_answers_itself():
    m = model(first='kind == "alarm"', then='kind == "alarm"', within="5m")
    s = m.new_state()
    assert feed(m, s, [ev(0, "alarm"), ev(300, "alarm"), ev(601, "alarm"), ev(700, "alarm")]) \
        == ["clear", "breach", "clear", "breach"]


def test_followed_forgets_as_that_no_b_can_answer_any_more():
    m = model(lateness=30)
    s = m.new_state()
    feed(m, s, [ev(0, "a"), ev(150, "x"), ev(210, "x")])
    assert s.waiting == [0.0]       # 0 + 180 >= 210 - 30: a B at 180 may still come
    feed(m, s, [ev(211, "x")])
    assert s.waiting == []
    assert s.answers == []


def test_followed_each_occurrence_is_one_episode_through_the_core():
    core = ScoringCore([rule(**FOLLOWED)], MemoryStore())
    alerts = run(core, [alarm(0), confirm(60), alarm(600), confirm(700), alarm(1000),
                        confirm(1181)])
    assert brief(alerts) == [("B1", "firing", 60.0, 60.0), ("B1", "resolved", 60.0, 600.0),
                             ("B1", "firing", 700.0, 700.0), ("B1", "resolved", 700.0, 1000.0)]
    assert alerts[0].alert_id != alerts[2].alert_id
    assert alerts[0].evidence["gap_s"] == 60.0
    assert core.advance(1e9) == []  # followed never has deadlines


# -- not followed ----------------------------------------------------------------------------

def test_not_followed_deadline_breach_and_clear_evidence():
    m = model("not_followed")
    s = m.new_state()
    assert feed(m, s, [ev(10, "a")]) == ["hold"]
    assert m.next_deadline(s) == 190.0
    reading = m.on_deadline(s, 190.0)
    assert (reading.verdict, reading.evidence) == (
        Verdict.BREACH, {"first_at": 10.0, "waited_s": 180.0, "within": "3m"})
    assert m.next_deadline(s) is None
    reading = m.score_one(s, ev(400, "b"))
    assert (reading.verdict, reading.evidence) == (
        Verdict.CLEAR, {"first_at": 10.0, "then_at": 400.0, "gap_s": 390.0})


def test_not_followed_b_in_time_cancels_the_deadline():
    m = model("not_followed")
    s = m.new_state()
    assert feed(m, s, [ev(0, "a"), ev(180, "b")]) == ["hold", "hold"]
    assert m.next_deadline(s) is None
    assert m.on_deadline(s, 1000.0).verdict is Verdict.HOLD


def test_not_followed_fires_from_the_clock_alone_exactly_within_is_not_yet_late():
    core = ScoringCore([rule(**UNCONFIRMED)], MemoryStore())
    assert run(core, [alarm(0, grid_id="G1")]) == []
    assert core.advance(180) == []           # the clock must pass the deadline, strictly
    alerts = core.advance(180.5)
    assert brief(alerts) == [("B1", "firing", 180.0, 180.0)]
    assert alerts[0].summary == "B1 unconfirmed for 3m"
    assert alerts[0].grid_id == "G1"
    assert alerts[0].evidence["first_at"] == 0.0
    assert core.advance(10_000) == []        # once per unanswered alarm
    assert brief(core.process([confirm(10_001)])) == [("B1", "resolved", 180.0, 10_001.0)]


def test_not_followed_confirmation_at_exactly_within_is_in_time_one_second_later_is_not():
    silent = run(ScoringCore([rule(**UNCONFIRMED)], MemoryStore()), [alarm(0), confirm(180)],
                 until=1000)
    late_by_one = run(ScoringCore([rule(**UNCONFIRMED)], MemoryStore()),
                      [alarm(0), confirm(181)], until=1000)
    assert silent == []
    assert brief(late_by_one) == [("B1", "firing", 180.0, 180.0),
                                  ("B1", "resolved", 180.0, 181.0)]


def test_not_followed_a_second_alarm_does_not_move_the_deadline_and_keeps_one_alert():
    core = ScoringCore([rule(**UNCONFIRMED)], MemoryStore())
    alerts = run(core, [alarm(0), alarm(120)], until=1000)
    # The first alarm's deadline fires the alert; the second's keeps it firing (no new alert).
    assert brief(alerts) == [("B1", "firing", 180.0, 180.0)]
    assert brief(core.process([confirm(1001)])) == [("B1", "resolved", 180.0, 1001.0)]


def test_not_followed_a_b_answers_only_as_in_its_window():
    m = model("not_followed")
    s = m.new_state()
    feed(m, s, [ev(0, "a"), ev(100, "a")])
    assert m.on_deadline(s, 180.0).verdict is Verdict.BREACH
    assert feed(m, s, [ev(200, "b")]) == ["clear"]   # clears 0's alert, answers 100 in time
    assert m.next_deadline(s) is None


def test_not_followed_b_before_a_does_not_answer_it():
    core = ScoringCore([rule(**UNCONFIRMED)], MemoryStore())
    assert brief(run(core, [confirm(0), alarm(60)], until=241)) == [
        ("B1", "firing", 240.0, 240.0)]


def test_not_followed_keys_are_independent_buildings():
    core = ScoringCore([rule(**UNCONFIRMED)], MemoryStore())
    alerts = run(core, [alarm(0, "B1"), alarm(0, "B2"), confirm(60, "B2")], until=1000)
    assert brief(alerts) == [("B1", "firing", 180.0, 180.0)]


def test_not_followed_b_processed_before_the_lagging_clock_fired_the_deadline():
    # A worker's clock may lag its events: the B comes after the window but before the tick.
    core = ScoringCore([rule(**UNCONFIRMED)], MemoryStore())
    assert core.process([alarm(0)]) == []
    assert core.process([confirm(200)]) == []
    assert brief(core.advance(1000)) == [("B1", "firing", 180.0, 180.0),
                                         ("B1", "resolved", 180.0, 200.0)]
    assert core.advance(2000) == []


def test_not_followed_lateness_delays_the_deadline_so_a_late_b_still_prevents_the_alert():
    m = model("not_followed", lateness=60)
    s = m.new_state()
    feed(m, s, [ev(0, "a")])
    assert m.next_deadline(s) == 240.0
    # After a newer event, a B 61 s older is late; one 55 s older, stamped in time, is used.
    assert feed(m, s, [ev(230, "x"), ev(169, "b"), ev(175, "b")]) == ["hold", "late", "hold"]
    assert m.next_deadline(s) is None


def test_not_followed_with_lateness_a_b_in_the_lateness_gap_fires_and_clears_at_the_deadline():
    core = ScoringCore([rule(**UNCONFIRMED | {"lateness": "1m"})], MemoryStore())
    alerts = run(core, [alarm(0), confirm(200)], until=1000)
    assert brief(alerts) == [("B1", "firing", 240.0, 240.0), ("B1", "resolved", 240.0, 240.0)]
    assert alerts[0].evidence["waited_s"] == 240.0
    assert alerts[1].evidence["then_at"] == 200.0


def test_not_followed_late_a_answered_by_an_earlier_arrived_b_waits_for_nothing():
    m = model("not_followed", lateness=60)
    s = m.new_state()
    assert feed(m, s, [ev(100, "b"), ev(50, "a")]) == ["hold", "hold"]
    assert m.next_deadline(s) is None


# -- lateness --------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["followed", "not_followed"])
def test_lateness_boundary_and_late_events_leave_the_state_alone(mode):
    m = model(mode, lateness=30)
    s = m.new_state()
    feed(m, s, [ev(100, "a")])
    assert m.score_one(s, ev(70, "b")).verdict is not Verdict.LATE   # exactly lateness old
    reading = m.score_one(s, ev(69.5, "b"))
    assert (reading.verdict, reading.evidence) == (Verdict.LATE, {"late_by_s": 0.5})
    before = pickle.dumps(s)
    m.learn_one(s, ev(10, "b"))
    assert pickle.dumps(s) == before


def test_with_no_lateness_any_older_event_is_late_and_counted_by_the_core():
    seen = []
    core = ScoringCore([rule(**FOLLOWED)], MemoryStore(),
                       on_unused=lambda r, rd: seen.append((r.id, rd.evidence["late_by_s"])))
    assert run(core, [alarm(100), confirm(99)]) == []
    assert seen == [("test.fire.confirmed_fast", 1.0)]


# -- purity, missing fields, restarts --------------------------------------------------------

def test_score_one_does_not_change_the_state():
    m = model("not_followed", lateness=60)
    s = m.new_state()
    feed(m, s, [ev(0, "a"), ev(30, "b"), ev(40, "a")])
    before = pickle.dumps(s)
    for e in (ev(50, "b"), ev(35, "a"), ev(100, "a"), ev(1, "b")):
        m.score_one(s, e)
    assert pickle.dumps(s) == before


def test_an_event_lacking_the_fields_of_both_conditions_says_nothing():
    m = model("not_followed", first="value > 5", then="value < 1")
    s = m.new_state()
    feed(m, s, [Event("t", "K", 0.0, {"value": 9.0})])
    before = pickle.dumps(s)
    assert feed(m, s, [Event("t", "K", 500.0, {})]) == ["hold"]
    assert pickle.dumps(s) == before
    assert m.next_deadline(s) == 180.0


def test_events_without_the_key_field_never_reach_the_model():
    core = ScoringCore([rule(**UNCONFIRMED)], MemoryStore())
    assert run(core, [event(REPORT, 0, report_id="R1", kind="fire_alarm")], until=1000) == []


STREAM = [alarm(0), confirm(60), alarm(300), alarm(400), confirm(700), alarm(1000),
          alarm(1000, "B2"), confirm(1100, "B2"), alarm(1500), confirm(1600)]


@pytest.mark.parametrize("spec", [UNCONFIRMED, FOLLOWED, UNCONFIRMED | {"lateness": "90s"}])
def test_state_pickles_mid_stream_and_resumes_with_identical_alerts(spec):
    straight = run(ScoringCore([rule(**spec)], MemoryStore()), STREAM, until=5000)
    store = MemoryStore()
    first = run(ScoringCore([rule(**spec)], store), STREAM[:4])
    restored = MemoryStore()
    restored.data = pickle.loads(pickle.dumps(store.data))
    core = ScoringCore([rule(**spec)], restored)
    core.reschedule_all()
    resumed = first + run(core, STREAM[4:], until=5000)
    assert [(a.alert_id, a.state, a.last_ts, a.evidence) for a in resumed] == \
        [(a.alert_id, a.state, a.last_ts, a.evidence) for a in straight]
    assert straight, "the stream must raise alerts for the comparison to mean something"


def test_state_is_plain_data():
    m = model("not_followed")
    s = m.new_state()
    feed(m, s, [ev(0, "a"), ev(10, "b"), ev(20, "a")])
    assert pickle.loads(pickle.dumps(s)) == s
    # With no lateness, only the waiting A is kept: the B at 10 can answer nothing any more.
    assert s == SequenceState(newest=20.0, waiting=[20.0], answers=[])


# -- rule files ------------------------------------------------------------------------------

def test_work_orders_keyed_by_the_topic_key():
    spec = {"id": "test.gov.not_accepted", "source": WORKITEM, "kind": "sequence",
            "mode": "not_followed", "first": 'kind == "work_order" && status == "received"',
            "then": 'status == "accepted"', "within": "30m"}

    def item(ts, status, item_id="W1"):
        return event(WORKITEM, ts, item_id=item_id, kind="work_order", dept="water",
                     status=status)

    alerts = run(ScoringCore([rule(**spec)], MemoryStore()),
                 [item(0, "received"), item(0, "received", "W2"), item(1800, "accepted", "W2")],
                 until=1801)
    assert brief(alerts) == [("W1", "firing", 1800.0, 1800.0)]


def test_describe_says_what_is_watched():
    assert rule(**UNCONFIRMED | {"lateness": "30s"}).model.describe() == {
        "kind": "sequence", "mode": "not_followed", "first": 'kind == "fire_alarm"',
        "then": 'kind == "fire_confirmed"', "within": "3m", "lateness": "30s"}


@pytest.mark.parametrize(("change", "message"), [
    ({"within": "0s"}, "within: must be positive"),
    ({"mode": "before"}, "mode"),
    ({"first": 'knd == "fire_alarm"'}, "unknown field 'knd' in first"),
    ({"then": "kind =="}, "then: not a valid CEL expression"),
])
def test_bad_parameters_are_reported(change, message):
    _, errors = compile_rule_text(rule_text(**UNCONFIRMED | change), Path("r.yaml"))
    assert any(message in str(e) for e in errors), [str(e) for e in errors]


def test_mode_is_required():
    with pytest.raises(ValidationError, match="mode"):
        SequenceParams(first="true", then="true", within="1m")
