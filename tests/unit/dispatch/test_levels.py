"""Three-level command (市 · 县区 · 镇街): the routing file's chain, where an order starts, and
each step it climbs by the clock (a fake clock: plain calls with ``now``)."""

from pathlib import Path

import pytest

from engine.dispatch.core import Dispatcher, Outputs
from engine.dispatch.routing import parse_routing, run_routing_tests
from tests.unit.dispatch.kit import alert, feedback, routing
from topics.records import WorkOrder

THREE_LEVELS = """\
defaults:
  levels:
    - {level: town,     ack_within: {red: 3m, orange: 10m}}
    - {level: district, ack_within: {red: 5m, orange: 15m}}
    - {level: city,     ack_within: {red: 10m}}
route:
  routes:
    - name: tanks
      match: {model_id: "hazchem.tank.*"}
      departments: [$alert, fire_rescue]
    - name: bridges answer faster at the town
      match: {model_id: "utilities.bridge.*"}
      ack_within: {red: 4m}
      levels: {town: {red: 1m}}
    - name: own departments
"""

IN_TOWN = {"grid_id": "G0512", "town": "xiaoshan.guali", "district": "xiaoshan"}


def errors_of(text: str) -> list[str]:
    parsed, errors = parse_routing(text, Path("r.yaml"))
    assert (parsed is None) == bool(errors)
    return [str(e) for e in errors]


def only(out: Outputs, department: str = "emergency_management") -> WorkOrder:
    (order,) = [o for o in out.orders if o.department == department]
    return order


# -- the routing file ----------------------------------------------------------------------


def test_the_chain_and_each_level_s_limits_come_from_the_file():
    tree = routing(THREE_LEVELS)
    assert tree.chain == ("town", "district", "city")
    # a level's own limit, else the defaults' (here the built-in 5m/15m/1h/4h)
    assert tree.level_limits("red") == {"town": 180.0, "district": 300.0, "city": 600.0}
    assert tree.level_limits("orange") == {"town": 600.0, "district": 900.0, "city": 900.0}


def test_an_order_starts_at_the_level_of_its_place():
    tree = routing(THREE_LEVELS)
    assert tree.route(alert(**IN_TOWN)).level == "town"
    assert tree.route(alert(town=None, district="xihu")).level == "district"
    assert tree.route(alert(grid_id=None, town=None, district=None)).level == "city"
    two_levels = routing()  # the kit's file names no chain: district, then city
    assert two_levels.chain == ("district", "city")
    assert two_levels.route(alert(**IN_TOWN)).level == "district"


def test_a_route_s_limits_apply_at_every_level_or_at_one():
    tree = routing(THREE_LEVELS)
    bridge = tree.route(alert(model_id="utilities.bridge.strain", severity="red", **IN_TOWN))
    assert bridge.limits == {"emergency_management": {
        "town": 60.0, "district": 240.0, "city": 240.0}}
    assert bridge.ack_within_s == {"emergency_management": 60.0}


def test_the_command_centre_holds_its_own_orders_at_the_city_level():
    tree = routing(THREE_LEVELS.replace("departments: [$alert, fire_rescue]",
                                        "departments: [$alert, command_center]"))
    routed = tree.route(alert(severity="red", **IN_TOWN))
    assert routed.limits["command_center"] == {"city": 600.0}
    assert routed.limits["emergency_management"] == {
        "town": 180.0, "district": 300.0, "city": 600.0}


@pytest.mark.parametrize(("edit", "expected"), [
    (("- {level: district,", "- {level: county,"),
     "r.yaml:4: defaults.levels.1.level: Input should be 'town', 'district' or 'city'"),
    (("    - {level: district, ack_within: {red: 5m, orange: 15m}}\n", ""),
     None),  # town then city: a chain may skip a level
    (("- {level: district,", "- {level: city,"),
     "r.yaml:5: defaults.levels.2: 'city' after 'city': list the levels lowest first, "
     "each once (town, district, city)"),
    (("    - {level: city,     ack_within: {red: 10m}}\n", ""),
     "r.yaml:4: defaults.levels: the chain must end at 'city' (it holds what no lower level "
     "acknowledged)"),
    (("ack_within: {red: 3m, orange: 10m}}", "ack_within: {red: 3m, orange: 10m}, by: x}"),
     "r.yaml:3: defaults.levels.0.by: unknown field (allowed here: level, ack_within)"),
    (("{red: 5m, orange: 15m}", "{red: soon}"),
     "r.yaml:4: defaults.levels.1.ack_within.red: not a duration: 'soon' (write e.g. 30s, "
     "10m, 1h30m, 7d)"),
])
def test_a_chain_s_problems_are_reported_on_their_lines(edit, expected):
    errors = errors_of(THREE_LEVELS.replace(*edit))
    assert errors == ([expected] if expected else [])


def test_an_empty_chain_and_a_route_level_outside_the_chain_are_refused():
    assert errors_of("defaults: {levels: []}\nroute: {}") == [
        "r.yaml:1: defaults.levels: name at least the city level"]
    no_town = THREE_LEVELS.replace(
        "    - {level: town,     ack_within: {red: 3m, orange: 10m}}\n", "")
    assert errors_of(no_town) == [
        "r.yaml:13: route.routes.1.levels.town: the chain (defaults.levels) has no town level; "
        "it has district, city"]


def test_a_routing_test_may_name_the_level_the_orders_start_at():
    tree = routing(THREE_LEVELS + """\
tests:
  - name: a tank in its town
    alert: {model_id: hazchem.tank.x, severity: red, departments: [], town: xihu.lingyin,
            district: xihu}
    expect: [fire_rescue]
    level: district
""")
    (outcome,) = run_routing_tests(tree)
    assert not outcome.passed
    assert outcome.diff()[-2:] == ["level:    expected district, starts at town",
                                   "routes:   root > tanks"]


# -- the dispatcher: start and climb -------------------------------------------------------


def test_an_unacknowledged_order_climbs_town_district_city_each_with_its_limit():
    dispatcher = Dispatcher(routing(THREE_LEVELS))
    order = only(dispatcher.on_alert(alert(severity="red", **IN_TOWN), now=1000.0))
    assert (order.level, order.town, order.ack_due, order.ack_within_s) == (
        "town", "xiaoshan.guali", 1180.0, 180.0)
    assert order.ack_within_by_level == {"town": 180.0, "district": 300.0, "city": 600.0}
    assert dispatcher.unfinished_by_level() == {"town": 2, "district": 0, "city": 0}

    assert dispatcher.advance(1179.0).orders == []
    order = only(dispatcher.advance(1180.0))
    assert (order.level, order.escalations, order.ack_due) == ("district", 1, 1480.0)
    assert order.history[-1].note == ("not acknowledged within 3m at the town level "
                                      "(xiaoshan.guali): escalated to the district level "
                                      "(xiaoshan)")

    assert dispatcher.advance(1479.0).orders == []
    order = only(dispatcher.advance(1480.0))
    assert (order.level, order.escalations, order.ack_due) == ("city", 2, 2080.0)
    assert order.history[-1].note == ("not acknowledged within 5m at the district level "
                                      "(xiaoshan): escalated to the city level (command_center)")
    assert [(h.level, h.place, h.since, h.ack_within_s) for h in order.levels] == [
        ("town", "xiaoshan.guali", 1000.0, 180.0), ("district", "xiaoshan", 1180.0, 300.0),
        ("city", None, 1480.0, 600.0)]

    order = only(dispatcher.advance(2080.0))  # the top: again every period of the city's
    assert (order.level, order.escalations, order.ack_due, len(order.levels)) == (
        "city", 3, 2680.0, 3)
    assert order.history[-1].note == "still not acknowledged at the city level (escalation 3)"


def test_an_order_starts_at_the_district_or_the_city_when_its_place_says_no_more():
    dispatcher = Dispatcher(routing(THREE_LEVELS))
    at_district = only(dispatcher.on_alert(alert(severity="red", grid_id="G1", town=None),
                                           now=1000.0))
    assert (at_district.level, at_district.ack_due) == ("district", 1300.0)
    assert [(h.level, h.place) for h in at_district.levels] == [("district", "xihu")]
    nowhere = only(dispatcher.on_alert(alert("a2", severity="red", key="T9", grid_id=None,
                                             town=None, district=None), now=1000.0))
    assert (nowhere.level, nowhere.ack_due, nowhere.ack_within_by_level) == (
        "city", 1600.0, {"city": 600.0})
    escalated = {o.order_id: o for o in dispatcher.advance(1600.0).orders}
    assert escalated[nowhere.order_id].history[-1].note == (
        "still not acknowledged at the city level (escalation 1)")


def test_an_acknowledgement_at_the_district_stops_the_climb():
    dispatcher = Dispatcher(routing(THREE_LEVELS))
    order = only(dispatcher.on_alert(alert(severity="red", **IN_TOWN), now=1000.0))
    dispatcher.advance(1180.0)
    acked = only(dispatcher.on_feedback(feedback(order.order_id, "acknowledged", 1200.0),
                                        now=1200.0))
    assert (acked.state, acked.level, acked.acknowledged_at) == ("acknowledged", "district",
                                                                 1200.0)
    assert [o for o in dispatcher.advance(5000.0).orders
            if o.department == "emergency_management"] == []


def test_a_severity_raised_at_the_town_tightens_every_level_s_limit():
    dispatcher = Dispatcher(routing(THREE_LEVELS))
    order = only(dispatcher.on_alert(alert(severity="orange", **IN_TOWN), now=1000.0))
    assert (order.ack_due, order.ack_within_by_level["district"]) == (1600.0, 900.0)
    raised = only(dispatcher.on_alert(alert(state="escalated", severity="red", **IN_TOWN),
                                      now=1010.0))
    assert (raised.ack_due, raised.ack_within_s) == (1190.0, 180.0)
    assert raised.ack_within_by_level == {"town": 180.0, "district": 300.0, "city": 600.0}
    assert only(dispatcher.advance(1190.0)).ack_due == 1490.0


def test_a_restarted_dispatcher_carries_on_up_the_chain():
    before = Dispatcher(routing(THREE_LEVELS))
    out = before.on_alert(alert(severity="red", **IN_TOWN), now=1000.0)
    orders = {o.order_id: o for o in [*out.orders, *before.advance(1180.0).orders]}
    after = Dispatcher(routing(THREE_LEVELS))
    after.restore(orders.values(), out.incidents)
    order = only(after.advance(1480.0))
    assert (order.level, [h.level for h in order.levels]) == (
        "city", ["town", "district", "city"])


def test_an_order_recorded_before_the_three_levels_still_escalates_to_the_city():
    old = WorkOrder.model_validate({
        "order_id": "O1", "incident_id": "I1", "alert_ids": ["a1"], "model_ids": ["m"],
        "department": "emergency_management", "severity": "red", "district": "xihu",
        "key": "T1", "summary": "s", "created_at": 1000.0, "ack_due": 1300.0,
        "ack_within_s": 300.0})
    assert (old.level, old.levels, old.ack_within_by_level) == ("district", [], {})
    dispatcher = Dispatcher(routing(THREE_LEVELS))
    dispatcher.restore([old], [])
    order = only(dispatcher.advance(1300.0))
    assert (order.level, order.ack_due) == ("city", 1600.0)
    assert [(h.level, h.since) for h in order.levels] == [("city", 1300.0)]
