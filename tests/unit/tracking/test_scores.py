"""Scorecards from records: percentiles, SLA hit and miss, false-alarm rates, deduplication."""

from __future__ import annotations

from engine.tracking.scores import fold_feedback, scorecards
from engine.tracking.store import LifeRecords
from tests.unit.tracking.recordkit import T0, alert, feedback, order
from topics.records import Scorecard, Severity

DAY = 86400.0


def cards(alerts=(), orders=(), fb=(), end: float = 7200.0, **kwargs) -> dict[str, Scorecard]:
    """Scorecards of the day before ``end`` s after T0, by ``scope:name``."""
    result = scorecards(alerts, orders, fb, T0 + end - DAY, T0 + end, **kwargs)
    return {f"{c.scope}:{c.name}": c for c in result}


def test_ack_and_resolve_percentiles_are_exact_nearest_rank():
    # acknowledged after 1..10 minutes, resolved after 10..100 minutes
    orders = [order(f"O{i}", ack=60.0 * i, resolved=600.0 * i) for i in range(1, 11)]
    fire = cards(orders=orders)["department:fire"]
    assert (fire.ack_p50_s, fire.ack_p90_s) == (300.0, 540.0)  # ranks 5 and 9 of 10
    assert (fire.resolve_p50_s, fire.resolve_p90_s) == (3000.0, 5400.0)
    assert (fire.orders, fire.acknowledged, fire.resolved) == (10, 10, 10)


def test_one_order_gives_its_own_times_and_none_gives_no_percentile():
    only = cards(orders=[order("O1", ack=42.0)])["department:fire"]
    assert (only.ack_p50_s, only.ack_p90_s, only.resolve_p50_s) == (42.0, 42.0, None)


def test_sla_met_at_the_limit_missed_a_second_over_and_when_never_acknowledged():
    end = 10_000.0
    orders = [
        order("at-limit", ack=300.0),                              # red, 5 min: met
        order("over", ack=301.0),                                  # a second late: missed
        order("never-past", created=end - 301.0),                  # silent past 5 min: missed
        order("never-within", created=end - 299.0),                # still within: not judged
        order("orange", severity="orange", ack=900.0),             # orange, 15 min: met
        order("blue-waiting", severity="blue", created=end - 3600.0),  # 4 h not up: not judged
    ]
    fire = cards(orders=orders, end=end)["department:fire"]
    assert (fire.sla_met, fire.sla_total, fire.sla_compliance) == (2, 4, 0.5)
    assert fire.open_backlog == 6  # acknowledged but not resolved is still open work


def test_sla_limits_are_configurable():
    orders = [order("O1", ack=301.0), order("O2", ack=700.0)]
    fire = cards(orders=orders, sla_seconds={Severity.RED: 600.0})["department:fire"]
    assert (fire.sla_met, fire.sla_total) == (1, 2)


def test_any_response_counts_as_the_acknowledgement():
    orders = [order("O1", state="open"), order("O2", state="open")]
    fb = [feedback("O1", "on_scene", at=200.0), feedback("O2", "resolved", at=400.0)]
    fire = cards(orders=orders, fb=fb)["department:fire"]
    assert (fire.acknowledged, fire.ack_p50_s, fire.ack_p90_s) == (2, 200.0, 400.0)
    assert (fire.sla_met, fire.resolved, fire.open_backlog) == (1, 1, 1)


def test_false_alarm_feedback_raises_the_models_false_alarm_rate():
    orders = [order("N1", ack=60, resolved=600), order("N2", ack=60),
              order("Q1", models=("m.quiet",), ack=60, resolved=600)]
    before = cards(orders=orders)
    assert (before["model:m.noisy"].false_alarm_rate, before["model:m.noisy"].open_backlog) == (
        0.0, 1)
    after = cards(orders=orders, fb=[feedback("N2", "false_alarm", at=900.0)])
    noisy = after["model:m.noisy"]
    assert (noisy.false_alarms, noisy.resolved, noisy.false_alarm_rate) == (1, 1, 0.5)
    assert after["model:m.quiet"].false_alarm_rate == 0.0
    # a false alarm is a verdict: no longer open, and no time to resolve
    assert noisy.open_backlog == 0
    assert noisy.resolve_p90_s == 600.0


def test_the_orders_own_false_alarm_state_counts_and_open_orders_have_no_rate():
    orders = [order("N1", state="false_alarm", ack=60), order("N2", ack=60)]
    noisy = cards(orders=orders)["model:m.noisy"]
    assert (noisy.false_alarms, noisy.false_alarm_rate, noisy.open_backlog) == (1, 1.0, 1)
    untouched = cards(orders=[order("N3")])["model:m.noisy"]
    assert untouched.false_alarm_rate is None


def test_the_false_alarm_rate_is_over_the_orders_closed_with_a_verdict_which_the_card_counts():
    # 2 orders, 1 false alarm, 1 still open: 1 false alarm of 1 closed, not of 2 orders
    one_open = cards(orders=[order("N1", state="false_alarm", ack=60), order("N2", ack=60)])
    noisy = one_open["model:m.noisy"]
    assert (noisy.orders, noisy.closed, noisy.false_alarms, noisy.false_alarm_rate) == (
        2, 1, 1, 1.0)
    # 3 orders, 1 false alarm, 2 resolved: 1 of 3
    all_closed = cards(orders=[order("N1", state="false_alarm", ack=60),
                               order("N2", ack=60, resolved=600),
                               order("N3", ack=60, resolved=900)])
    noisy = all_closed["model:m.noisy"]
    assert (noisy.orders, noisy.closed, noisy.false_alarms, noisy.resolved) == (3, 3, 1, 2)
    assert noisy.false_alarm_rate == 1 / 3
    # the department's card counts the same orders closed
    assert all_closed["department:fire"].closed == 3
    # none closed yet: no rate, over none
    waiting = cards(orders=[order("N1", ack=60)])["model:m.noisy"]
    assert (waiting.closed, waiting.false_alarm_rate) == (0, None)


def test_a_scorecard_recorded_before_closed_was_counted_reads_it_from_its_verdicts():
    old = {"scope": "model", "name": "m.noisy", "period_start": 0, "period_end": 1,
           "orders": 4, "resolved": 2, "false_alarms": 1, "false_alarm_rate": 1 / 3}
    assert Scorecard.model_validate(old).closed == 3
    assert Scorecard.model_validate({**old, "closed": 5}).closed == 5


def test_the_orders_own_verdict_stands_and_feedback_decides_until_it_has_one():
    resolved = order("O1", ack=60.0, resolved=600.0)
    # dispatch refuses a verdict after the first: tracking counts as dispatch does
    assert fold_feedback(resolved, [feedback("O1", "false_alarm", at=900.0)]).verdict == (
        "resolved")
    waiting = order("O2", ack=60.0)
    first = fold_feedback(waiting, [feedback("O2", "resolved", at=700.0),
                                    feedback("O2", "false_alarm", at=500.0)])
    assert (first.verdict, first.verdict_at, first.resolve_seconds) == (
        "false_alarm", T0 + 500.0, None)


def test_duplicate_alert_records_count_once_and_the_latest_order_record_counts():
    firing = alert("A1")
    records = [firing, firing, alert("A1", state="resolved", at=60.0), alert("A2", at=5.0)]
    versions = [order("O1"), order("O1", ack=60.0), order("O1", ack=60.0, resolved=120.0),
                order("O1", ack=60.0, resolved=120.0)]
    got = cards(alerts=records, orders=versions)
    assert got["model:m.noisy"].alerts == 2
    assert got["department:fire"].alerts == 2
    fire = got["department:fire"]
    assert (fire.orders, fire.acknowledged, fire.resolved, fire.open_backlog) == (1, 1, 1, 0)


def test_a_later_order_record_supersedes_even_when_it_says_less():
    # dispatch re-opened the order: the compacted topic's last record is the truth
    versions = [order("O1", ack=60.0, resolved=120.0), order("O1", ack=60.0, state="open",
                                                              resolved_at=None)]
    fire = cards(orders=versions)["department:fire"]
    assert (fire.resolved, fire.open_backlog) == (0, 1)


def test_silenced_or_inhibited_alerts_no_order_names_are_not_dispatched():
    alerts = [
        alert("silenced", silenced_by=["S1"]),
        alert("inhibited", inhibited_by="red-1"),
        alert("silenced-then-sent", silenced_by=["S1"]),
        alert("silenced-then-sent", state="escalated", severity="red", at=60.0),
        alert("silenced-but-ordered", silenced_by=["S1"]),
        alert("plain"),
    ]
    orders = [order("O1", alert_ids=("silenced-but-ordered",))]
    noisy = cards(alerts=alerts, orders=orders)["model:m.noisy"]
    assert (noisy.alerts, noisy.not_dispatched) == (5, 2)


def test_alerts_and_orders_outside_the_period_do_not_count_but_old_open_work_is_backlog():
    got = cards(alerts=[alert("old", at=-2 * DAY), alert("new", at=100.0)],
                orders=[order("old-open", created=-2 * DAY), order("old-done", created=-2 * DAY,
                                                                   ack=60, resolved=120),
                        order("new", created=100.0, ack=60)])
    fire = got["department:fire"]
    assert (fire.alerts, fire.orders, fire.open_backlog) == (1, 1, 2)


def test_an_order_counts_for_its_department_and_each_of_its_models():
    got = cards(orders=[order("O1", models=("m.a", "m.b"), department="water", ack=10)])
    assert sorted(got) == ["department:water", "level:district", "model:m.a", "model:m.b"]
    assert {c.orders for c in got.values()} == {1}
    assert all(c.period_end == T0 + 7200.0 for c in got.values())


def test_an_alert_counts_for_each_of_its_departments():
    got = cards(alerts=[alert("A1", departments=["fire", "transport"])])
    assert (got["department:fire"].alerts, got["department:transport"].alerts) == (1, 1)
    assert got["department:fire"].orders == 0


def test_the_store_drops_redelivered_records_and_keeps_real_changes():
    records = LifeRecords()
    firing = alert("A1").model_dump_json().encode()
    reopened = alert("A1", reopened=1, at=30.0).model_dump_json().encode()
    for value in (firing, firing, reopened):
        assert records.add("alerts", b"A1", value) is None
    assert [a.reopened for a in records.alerts.values()] == [0, 1]
    assert records.add("dispatch.orders", b"O1", order("O1").model_dump_json().encode()) is None
    assert records.add("dispatch.orders", b"O1", None) is None  # a tombstone deletes
    assert records.orders == {}
    problem = records.add("dispatch.orders", b"O2", b'{"order_id": "O2"}')
    assert problem is not None and problem.startswith(
        "dispatch.orders: does not match the WorkOrder record: incident_id: Field required")
    assert (records.taken["alerts"], records.skipped["dispatch.orders"]) == (3, 1)


def test_forgetting_old_alerts_ignores_their_later_records():
    records = LifeRecords()
    records.add_alert(alert("old", at=0.0))
    records.add_alert(alert("new", at=500.0))
    assert records.forget_alerts_before(T0 + 100.0) == 1
    records.add_alert(alert("old", state="resolved", at=600.0))
    assert [a.alert_id for a in records.alerts.values()] == ["new"]
