"""Grouping: one incident per place while its alerts fire and group_within after."""

from engine.dispatch.grouping import IncidentGrouper, incident_id_for
from tests.unit.dispatch.kit import alert

T = 1800.0


def test_alerts_of_one_grid_join_one_incident_with_a_stable_id():
    grouper = IncidentGrouper(T)
    first = grouper.add(alert("a1", first_ts=100.0), now=1000.0)
    second = grouper.add(alert("a2", model_id="hazchem.tank.temp_high", key="T2",
                               severity="red", first_ts=150.0), now=1005.0)
    assert first is not None and second is not None
    assert first.previous is None and second.previous is None
    incident = second.incident
    assert incident.incident_id == incident_id_for("grid:G1", 100.0)
    assert incident.place == "grid:G1"
    assert incident.alert_ids == ["a1", "a2"]
    assert incident.model_ids == ["hazchem.tank.level_high", "hazchem.tank.temp_high"]
    assert incident.severity == "red"
    assert (incident.opened_at, incident.updated_at, incident.state) == (1000.0, 1005.0, "open")


def test_the_place_is_the_key_when_an_alert_has_no_grid():
    grouper = IncidentGrouper(T)
    a = grouper.add(alert("a1", grid_id=None, key="V1"), now=0.0)
    b = grouper.add(alert("a2", grid_id=None, key="V2"), now=0.0)
    c = grouper.add(alert("a3", grid_id="G1", key="V1"), now=0.0)
    assert a and b and c
    assert a.incident.place == "key:V1"
    assert len({a.incident.incident_id, b.incident.incident_id, c.incident.incident_id}) == 3


def test_an_incident_closes_group_within_after_its_last_alert_resolved():
    grouper = IncidentGrouper(T)
    grouper.add(alert("a1"), now=0.0)
    grouper.add(alert("a2"), now=10.0)
    grouper.add(alert("a1", "resolved"), now=20.0)
    assert grouper.advance(10_000.0) == []  # a2 still fires: open however long
    grouped = grouper.add(alert("a2", "resolved"), now=30.0)
    assert grouped and grouped.incident.closes_at == 30.0 + T
    assert grouper.advance(30.0 + T - 1) == []
    (closed,) = grouper.advance(30.0 + T)
    assert (closed.state, closed.updated_at) == ("closed", 30.0 + T)


def test_an_alert_in_the_quiet_time_joins_and_keeps_the_incident_open():
    grouper = IncidentGrouper(T)
    grouper.add(alert("a1"), now=0.0)
    opened = grouper.add(alert("a1", "resolved"), now=10.0)
    joined = grouper.add(alert("a2", first_ts=5000.0), now=100.0)
    assert opened and joined
    assert joined.incident.incident_id == opened.incident.incident_id
    assert joined.incident.closes_at is None
    assert grouper.advance(10.0 + T) == []  # the closing timer of the quiet time is void


def test_after_closing_the_place_starts_a_new_incident():
    grouper = IncidentGrouper(T)
    grouper.add(alert("a1"), now=0.0)
    grouper.add(alert("a1", "resolved"), now=10.0)
    (closed,) = grouper.advance(10.0 + T)
    fresh = grouper.add(alert("a2", first_ts=9000.0), now=20.0 + T)
    assert fresh and fresh.incident.incident_id != closed.incident_id
    assert fresh.incident.incident_id == incident_id_for("grid:G1", 9000.0)


def test_records_already_applied_are_dropped_and_later_ones_taken():
    grouper = IncidentGrouper(T)
    assert grouper.add(alert("a1"), now=0.0)
    assert grouper.add(alert("a1"), now=1.0) is None  # redelivered
    escalated = grouper.add(alert("a1", "escalated", "red"), now=2.0)
    assert escalated and escalated.previous == ("firing", "orange", 0)
    assert grouper.add(alert("a1", "escalated", "red"), now=3.0) is None
    assert grouper.add(alert("a1", "resolved", "red"), now=4.0)
    assert grouper.add(alert("a1", "firing"), now=5.0) is None  # an old record replayed
    reopened = grouper.add(alert("a1", "firing", "red", reopened=1), now=6.0)
    assert reopened and reopened.incident.alert_states["a1"] == ("firing", "red", 1)
    assert reopened.incident.closes_at is None


def test_restore_keeps_open_incidents_their_closing_timers_and_what_was_applied():
    before = IncidentGrouper(T)
    before.add(alert("a1"), now=0.0)
    quiet = before.add(alert("a1", "resolved"), now=10.0)
    assert quiet
    after = IncidentGrouper(T)
    after.restore([quiet.incident.model_copy(deep=True)])
    assert after.add(alert("a1"), now=20.0) is None  # replayed after the restart
    (closed,) = after.advance(10.0 + T)
    assert closed.incident_id == quiet.incident.incident_id


def test_restore_lets_a_new_alert_join_the_open_incident_of_its_place():
    before = IncidentGrouper(T)
    grouped = before.add(alert("a1"), now=0.0)
    assert grouped
    after = IncidentGrouper(T)
    after.restore([grouped.incident.model_copy(deep=True)])
    joined = after.add(alert("a2"), now=5.0)
    assert joined and joined.incident.incident_id == grouped.incident.incident_id
    assert joined.incident.alert_ids == ["a1", "a2"]
