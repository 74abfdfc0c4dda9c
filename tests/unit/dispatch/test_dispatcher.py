"""The dispatcher core with a fake clock: orders, escalation, feedback, suppression, restore."""

import pytest

from engine.dispatch.core import Dispatcher, FeedbackRefused, Outputs, order_id_for
from engine.dispatch.grouping import incident_id_for
from tests.unit.dispatch.kit import alert, feedback, routing

INCIDENT = incident_id_for("grid:G1", 100.0)
EM = order_id_for(INCIDENT, "emergency_management", 0)
FIRE = order_id_for(INCIDENT, "fire_rescue", 0)
ORANGE_TANK_LIMIT = 600.0  # the kit's "tanks" route: orange 10m


def by_department(outputs: Outputs) -> dict:
    return {o.department: o for o in outputs.orders}


def test_a_firing_alert_makes_one_order_per_routed_department():
    dispatcher = Dispatcher(routing())
    out = dispatcher.on_alert(alert(), now=1000.0)
    orders = by_department(out)
    assert set(orders) == {"emergency_management", "fire_rescue"}
    em = orders["emergency_management"]
    assert em.order_id == EM and em.incident_id == INCIDENT
    assert (em.alert_ids, em.model_ids, em.key, em.district, em.grid_id) == (
        ["a1"], ["hazchem.tank.level_high"], "T1", "xihu", "G1")
    assert (em.level, em.state, em.severity, em.escalations) == ("district", "open", "orange", 0)
    assert (em.created_at, em.ack_due, em.ack_within_s) == (1000.0, 1600.0, ORANGE_TANK_LIMIT)
    assert [(h.what, h.by) for h in em.history] == [("created", "dispatch")]
    assert em.history[0].note == ("alert a1 via root > tanks; the district level (xihu) to "
                                  "acknowledge within 10m")
    assert [i.incident_id for i in out.incidents] == [INCIDENT]
    assert [(h.what, h.department) for h in out.happened] == [
        ("created", "emergency_management"), ("created", "fire_rescue")]


def test_a_duplicate_alert_record_changes_nothing():
    dispatcher = Dispatcher(routing())
    dispatcher.on_alert(alert(), now=1000.0)
    again = dispatcher.on_alert(alert(), now=1001.0)
    assert (again.orders, again.incidents, again.happened) == ([], [], [])
    assert len(dispatcher.orders) == 2


def test_another_alert_of_the_incident_joins_the_order_and_a_higher_severity_raises_it():
    dispatcher = Dispatcher(routing())
    dispatcher.on_alert(alert(), now=1000.0)
    joined = by_department(dispatcher.on_alert(
        alert("a2", model_id="hazchem.tank.temp_high", severity="yellow"), now=1100.0))
    em = joined["emergency_management"]
    assert em.order_id == EM and em.alert_ids == ["a1", "a2"]
    assert (em.severity, em.ack_due) == ("orange", 1600.0)  # lower severity: due unchanged
    assert em.history[-1].what == "alert_added"

    raised = by_department(dispatcher.on_alert(alert("a3", severity="red"), now=1200.0))
    em = raised["emergency_management"]
    assert (em.severity, em.ack_due, em.ack_within_s) == ("red", 1500.0, 300.0)
    assert [h.what for h in em.history] == ["created", "alert_added", "alert_added",
                                            "severity_raised"]
    assert raised["command_center"].order_id == order_id_for(INCIDENT, "command_center", 0)
    assert len(dispatcher.orders) == 3


def test_an_escalated_alert_raises_its_orders():
    dispatcher = Dispatcher(routing())
    dispatcher.on_alert(alert(), now=1000.0)
    out = by_department(dispatcher.on_alert(alert(state="escalated", severity="red"),
                                            now=1010.0))
    assert out["emergency_management"].severity == "red"
    assert out["emergency_management"].ack_due == 1310.0
    assert out["emergency_management"].alert_ids == ["a1"]
    assert "command_center" in out


def test_an_unacknowledged_order_escalates_to_the_city_and_again_each_period():
    dispatcher = Dispatcher(routing())
    dispatcher.on_alert(alert(), now=1000.0)
    opened = dispatcher.unfinished_orders
    assert dispatcher.unfinished_by_level() == {"town": 0, "district": opened, "city": 0}
    assert dispatcher.advance(1599.0).orders == []
    first = by_department(dispatcher.advance(1600.0))
    assert dispatcher.unfinished_by_level()["city"] == len(first) >= 1
    em = first["emergency_management"]
    assert (em.level, em.escalations, em.ack_due, em.department) == (
        "city", 1, 2200.0, "emergency_management")
    assert em.history[-1].what == "escalated"
    assert em.history[-1].note == ("not acknowledged within 10m at the district level (xihu): "
                                   "escalated to the city level (command_center)")
    assert dispatcher.advance(2199.0).orders == []
    second = by_department(dispatcher.advance(2200.5))["emergency_management"]
    assert (second.level, second.escalations, second.ack_due) == ("city", 2, 2800.0)
    assert second.history[-1].note == "still not acknowledged at the city level (escalation 2)"


def test_a_dispatcher_that_was_away_escalates_once_and_starts_a_fresh_period():
    dispatcher = Dispatcher(routing())
    dispatcher.on_alert(alert(), now=1000.0)
    em = by_department(dispatcher.advance(5000.0))["emergency_management"]
    assert (em.escalations, em.ack_due) == (1, 5600.0)


def test_acknowledgement_stops_escalation():
    dispatcher = Dispatcher(routing())
    dispatcher.on_alert(alert(), now=1000.0)
    (acked,) = dispatcher.on_feedback(feedback(EM, "acknowledged", 1200.0, by="duty-7"),
                                      now=1201.0).orders
    assert (acked.state, acked.acknowledged_at) == ("acknowledged", 1200.0)
    assert (acked.history[-1].what, acked.history[-1].by) == ("acknowledged", "duty-7")
    escalated = [o.order_id for o in dispatcher.advance(10_000.0).orders]
    assert escalated == [FIRE]  # only the order nobody acknowledged


def test_feedback_walks_an_order_to_its_end():
    dispatcher = Dispatcher(routing())
    dispatcher.on_alert(alert(), now=1000.0)
    (on_scene,) = dispatcher.on_feedback(feedback(EM, "on_scene", 1300.0), now=1300.0).orders
    assert (on_scene.state, on_scene.acknowledged_at, on_scene.on_scene_at) == (
        "on_scene", 1300.0, 1300.0)
    (late_ack,) = dispatcher.on_feedback(feedback(EM, "acknowledged", 1310.0),
                                         now=1310.0).orders
    assert late_ack.state == "on_scene"  # recorded, but does not go back
    (resolved,) = dispatcher.on_feedback(feedback(EM, "resolved", 2000.0, note="valve shut"),
                                         now=2000.0).orders
    assert (resolved.state, resolved.resolved_at) == ("resolved", 2000.0)
    assert [h.what for h in resolved.history] == ["created", "on_scene", "acknowledged",
                                                  "resolved"]
    assert resolved.history[-1].note == "valve shut"


def test_a_false_alarm_closes_the_order_and_counts_as_the_response():
    dispatcher = Dispatcher(routing())
    dispatcher.on_alert(alert(), now=1000.0)
    (order,) = dispatcher.on_feedback(feedback(EM, "false_alarm", 1100.0), now=1100.0).orders
    assert (order.state, order.acknowledged_at, order.resolved_at) == (
        "false_alarm", 1100.0, 1100.0)
    assert dispatcher.unfinished_orders == 1


def test_feedback_that_cannot_apply_is_refused_and_a_redelivered_copy_ignored():
    dispatcher = Dispatcher(routing())
    dispatcher.on_alert(alert(), now=1000.0)
    with pytest.raises(FeedbackRefused, match="no work order 'nope'"):
        dispatcher.on_feedback(feedback("nope", "acknowledged", 1100.0), now=1100.0)
    with pytest.raises(FeedbackRefused, match="is emergency_management's, not transport's"):
        dispatcher.on_feedback(feedback(EM, "acknowledged", 1100.0, department="transport"),
                               now=1100.0)
    # the command centre may answer for any order
    assert dispatcher.on_feedback(feedback(EM, "acknowledged", 1100.0,
                                           department="command_center"), now=1100.0).orders
    resolved = feedback(EM, "resolved", 1200.0)
    assert dispatcher.on_feedback(resolved, now=1200.0).orders
    assert dispatcher.on_feedback(resolved, now=1201.0).orders == []
    with pytest.raises(FeedbackRefused, match="is already resolved"):
        dispatcher.on_feedback(feedback(EM, "on_scene", 1300.0), now=1300.0)


@pytest.mark.parametrize("suppression", [{"silenced_by": ["s1"]}, {"inhibited_by": "red-1"}])
def test_silenced_or_inhibited_alerts_are_grouped_but_not_dispatched(suppression):
    dispatcher = Dispatcher(routing())
    out = dispatcher.on_alert(alert(**suppression), now=1000.0)
    assert out.orders == []
    assert out.incidents[0].alert_ids == ["a1"]
    assert dispatcher.advance(100_000.0).orders == []
    # a later alert of the same incident is dispatched as usual; the suppressed one stays out
    dispatched = by_department(dispatcher.on_alert(alert("a2"), now=1100.0))
    assert dispatched["emergency_management"].alert_ids == ["a2"]
    assert dispatcher.on_alert(alert("a3", severity="red", **suppression), now=1200.0).orders \
        == []


def test_a_resolved_alert_is_noted_and_the_order_waits_for_its_department():
    dispatcher = Dispatcher(routing())
    dispatcher.on_alert(alert(), now=1000.0)
    out = by_department(dispatcher.on_alert(alert(state="resolved"), now=1100.0))
    em = out["emergency_management"]
    assert (em.state, em.history[-1].what) == ("open", "alert_resolved")
    assert em.history[-1].note == "alert a1 resolved: a1 resolved orange"
    assert out.keys() == {"emergency_management", "fire_rescue"}
    assert len(dispatcher.advance(1600.0).orders) == 2  # still nobody acknowledged


def test_a_new_alert_after_the_department_closed_its_order_opens_a_new_one():
    dispatcher = Dispatcher(routing())
    dispatcher.on_alert(alert(), now=1000.0)
    dispatcher.on_feedback(feedback(EM, "resolved", 1100.0), now=1100.0)
    out = by_department(dispatcher.on_alert(alert("a2"), now=1200.0))
    assert out["emergency_management"].order_id == order_id_for(INCIDENT,
                                                                 "emergency_management", 1)
    assert out["emergency_management"].alert_ids == ["a2"]
    assert out["fire_rescue"].order_id == FIRE  # still open: joined


def test_restore_keeps_pending_timers_and_what_was_already_applied():
    before = Dispatcher(routing())
    published: dict = {}
    incidents: dict = {}

    def keep(out: Outputs) -> None:
        published.update({o.order_id: o for o in out.orders})
        incidents.update({i.incident_id: i for i in out.incidents})

    keep(before.on_alert(alert(), now=1000.0))
    keep(before.on_feedback(feedback(FIRE, "acknowledged", 1100.0, department="fire_rescue"),
                            now=1100.0))
    keep(before.advance(1600.0))  # emergency management's order escalated: due 2200

    after = Dispatcher(routing())
    after.restore(list(published.values()), list(incidents.values()))
    replayed = after.on_alert(alert(), now=1700.0)  # the uncommitted batch, redelivered
    assert (replayed.orders, replayed.incidents) == ([], [])
    assert after.advance(2199.0).orders == []
    (em,) = after.advance(2200.0).orders
    assert (em.order_id, em.escalations, em.ack_due) == (EM, 2, 2800.0)
    joined = by_department(after.on_alert(alert("a2"), now=2300.0))
    assert joined["emergency_management"].order_id == EM
    assert joined["fire_rescue"].alert_ids == ["a1", "a2"]


def test_a_closed_incident_with_closed_orders_is_forgotten_after_the_retention():
    dispatcher = Dispatcher(routing(), retention_s=1000.0)
    dispatcher.on_alert(alert(), now=0.0)
    dispatcher.on_alert(alert(state="resolved"), now=10.0)
    dispatcher.on_feedback(feedback(EM, "resolved", 20.0), now=20.0)
    (closed,) = dispatcher.advance(10.0 + 1800.0).incidents
    assert closed.state == "closed"
    dispatcher.advance(5000.0)
    assert INCIDENT in dispatcher.grouper.incidents  # fire and rescue has not answered
    dispatcher.on_feedback(feedback(FIRE, "false_alarm", 5100.0, department="fire_rescue"),
                           now=5100.0)
    dispatcher.advance(7000.0)
    assert dispatcher.orders == {} and dispatcher.grouper.incidents == {}


def test_published_records_are_snapshots():
    dispatcher = Dispatcher(routing())
    (em, _) = dispatcher.on_alert(alert(), now=1000.0).orders
    dispatcher.advance(1600.0)
    assert (em.level, len(em.history)) == ("district", 1)


def test_an_alert_that_fires_again_is_noted_in_its_unfinished_orders():
    dispatcher = Dispatcher(routing())
    dispatcher.on_alert(alert(), now=1000.0)
    dispatcher.on_alert(alert(state="resolved"), now=1100.0)
    dispatcher.on_feedback(feedback(FIRE, "resolved", 1150.0, department="fire_rescue"),
                           now=1150.0)
    out = by_department(dispatcher.on_alert(alert(reopened=1), now=1200.0))
    em = out["emergency_management"]
    assert (em.order_id, [h.what for h in em.history]) == (
        EM, ["created", "alert_resolved", "alert_reopened"])
    # fire and rescue had closed its order: the alert firing again is new work for it
    assert out["fire_rescue"].order_id == order_id_for(INCIDENT, "fire_rescue", 1)
