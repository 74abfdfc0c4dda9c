"""Routing: Alertmanager-style matching, continue, inheritance, tests, and file:line errors."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.dispatch.cli import dispatch_app
from engine.dispatch.routing import (
    alert_from_fields,
    load_routing,
    parse_routing,
    rule_catalogue,
    run_routing_tests,
)
from tests.unit.dispatch.kit import alert, routing

REPO = Path(__file__).resolve().parents[3]
DEFAULT_ROUTES = REPO / "rules" / "routing" / "routes.yaml"


def paths(routed):
    return [" > ".join(m.path) for m in routed.matches]


def errors_of(text: str) -> list[str]:
    parsed, errors = parse_routing(text, Path("r.yaml"))
    assert (parsed is None) == bool(errors)
    return [str(e) for e in errors]


# -- matching -----------------------------------------------------------------------------


def test_the_root_alone_sends_an_alert_to_its_own_departments():
    routed = routing("route: {}").route(alert(departments=["transport", "public_security"]))
    assert paths(routed) == ["root"]
    assert routed.ack_within_s == {"transport": 900.0, "public_security": 900.0}


def test_the_first_matching_route_takes_the_alert_and_stops_the_search():
    tree = routing("""\
route:
  routes:
    - {name: tanks, match: {model_id: "hazchem.tank.*"}, departments: [fire_rescue]}
    - {name: orange, match: {severity: orange}, departments: [command_center]}
""")
    assert tree.route(alert(severity="orange")).departments == ["fire_rescue"]
    assert tree.route(alert(model_id="police.incident.major")).departments == ["command_center"]
    # neither child matches: the alert lands on the root, its own departments
    assert tree.route(alert(model_id="police.x", severity="red")).departments == [
        "emergency_management"]


def test_continue_keeps_matching_the_siblings_below():
    routed = routing().route(alert(severity="red"))
    assert paths(routed) == ["root > red to the command centre too", "root > tanks"]
    assert routed.departments == ["command_center", "emergency_management", "fire_rescue"]


def test_a_continue_route_alone_does_not_fall_back_to_the_parent():
    # As in Alertmanager: the parent is used only when no child matched at all, so a tree that
    # means "also" needs a catch-all route after the continuing one.
    tree = routing("""\
route:
  routes:
    - {match: {severity: red}, departments: [command_center], continue: true}
""")
    assert tree.route(alert(severity="red")).departments == ["command_center"]


def test_matchers_take_lists_prefixes_and_any_of_the_alerts_departments():
    tree = routing("""\
route:
  routes:
    - name: hit
      match: {severity: [red, orange], department: "public_sec*", district: xihu,
              source: events.hazchem.facility, maturity: stable}
      departments: [command_center]
""")
    hit = alert(departments=["transport", "public_security"])
    assert tree.route(hit).departments == ["command_center"]
    assert tree.route(alert(departments=["transport"])).departments == ["transport"]
    assert tree.route(hit.model_copy(update={"severity": "yellow"})).departments == [
        "transport", "public_security"]
    # a field the alert lacks matches nothing
    assert tree.route(hit.model_copy(update={"district": None})).departments == [
        "transport", "public_security"]


def test_departments_and_limits_are_inherited_and_alert_stands_for_the_alerts_own():
    tree = routing("""\
defaults: {ack_within: {orange: 20m}}
route:
  routes:
    - name: hazchem
      match: {model_id: "hazchem.*"}
      departments: [$alert, emergency_management]
      ack_within: {orange: 10m}
      routes:
        - name: xihu
          match: {district: xihu}
""")
    routed = tree.route(alert(departments=["transport", "emergency_management"]))
    assert paths(routed) == ["root > hazchem > xihu"]
    assert routed.ack_within_s == {"transport": 600.0, "emergency_management": 600.0}
    assert tree.route(alert(model_id="police.x")).ack_within_s == {
        "emergency_management": 1200.0}
    assert tree.ack_limits["red"] == 300.0  # severities the file leaves out keep the default


def test_a_department_named_by_two_routes_gets_the_shorter_limit():
    tree = routing("""\
route:
  routes:
    - {match: {severity: red}, departments: [fire_rescue], ack_within: {red: 2m},
       continue: true}
    - {match: {severity: red}, departments: [fire_rescue, command_center]}
""")
    assert tree.route(alert(severity="red")).ack_within_s == {
        "fire_rescue": 120.0, "command_center": 300.0}


def test_an_alert_naming_no_department_goes_to_the_escalation_target():
    routed = routing("route: {}").route(alert(departments=[], severity="blue"))
    assert routed.ack_within_s == {"command_center": 14400.0}


# -- the file's own tests -----------------------------------------------------------------


def test_the_shipped_routing_file_is_valid_and_its_tests_pass():
    tree, errors = load_routing(DEFAULT_ROUTES)
    assert errors == []
    assert tree is not None
    outcomes = run_routing_tests(tree, rule_catalogue(REPO / "rules"))
    assert len(outcomes) >= 10
    assert [(o.name, o.diff()) for o in outcomes if not o.passed] == []


def test_a_failing_routing_test_shows_what_differs():
    tree = routing("""\
route:
  routes:
    - {name: red, match: {severity: red}, departments: [command_center]}
tests:
  - name: red reaches transport and the centre
    alert: {severity: red, departments: [transport]}
    expect: [transport, command_center]
""")
    (outcome,) = run_routing_tests(tree)
    assert not outcome.passed
    assert outcome.line == 5
    assert outcome.diff() == ["expected: command_center, transport",
                              "actual:   command_center",
                              "missing:  transport",
                              "routes:   root > red"]


def test_a_test_alert_takes_the_models_departments_from_the_rule_files():
    catalogue = rule_catalogue(REPO / "rules")
    built = alert_from_fields({"model_id": "hazchem.vehicle.overspeed_highway"}, catalogue)
    assert (built.departments, built.severity) == (["transport", "public_security"], "orange")
    assert alert_from_fields({"model_id": "hazchem.vehicle.overspeed_highway",
                              "severity": "red"}, catalogue).severity == "red"


# -- errors with their lines --------------------------------------------------------------

GOOD = """\
defaults:
  ack_within: {red: 5m}
route:
  routes:
    - name: tanks
      match: {model_id: "hazchem.tank.*"}
      departments: [fire_rescue]
tests:
  - name: a tank alert
    alert: {model_id: hazchem.tank.x, severity: red, departments: []}
    expect: [fire_rescue]
"""


def test_the_good_example_is_good():
    assert errors_of(GOOD) == []


@pytest.mark.parametrize(("edit", "expected"), [
    (("red: 5m", "red: 5x"),
     "r.yaml:2: defaults.ack_within.red: not a duration: '5x' (write e.g. 30s, 10m, 1h30m, 7d)"),
    (("red: 5m", "purple: 5m"),
     "r.yaml:2: defaults.ack_within.purple: not a valid key here: Input should be 'blue', "
     "'yellow', 'orange' or 'red'"),
    (("match: {model_id", "match: {tag: x, model_id"),
     "r.yaml:6: route.routes.0.match.tag: alerts cannot be matched on 'tag'; match on "
     "model_id, department, severity, district, town, grid_id, key, maturity, source"),
    (("[fire_rescue]\ntests", "[fire_rescue]\n      contine: true\ntests"),
     "r.yaml:8: route.routes.0.contine: unknown field (allowed here: name, match, departments, "
     "continue, ack_within, levels, routes)"),
    (('"hazchem.tank.*"', '"hazchem.*.tank"'),
     "r.yaml:6: route.routes.0.match.model_id: 'hazchem.*.tank': '*' may only end a value "
     "(a prefix)"),
    (("match: {model_id", "match: {severity: crimson, model_id"),
     "r.yaml:6: route.routes.0.match.severity: unknown severity 'crimson'; known: blue, "
     "yellow, orange, red"),
    (("route:\n", "route:\n  match: {severity: red}\n"),
     "r.yaml:4: route.match: the root route takes every alert; put matchers on the routes "
     "below it"),
    (("    expect: [fire_rescue]", "    expect: [fire_rescue]\n  - name: x\n    expect: []"),
     "r.yaml:12: tests.1.alert: required field is missing"),
    (("tanks\n", "[tanks\n"),
     "r.yaml:6: not valid YAML: expected ',' or ']', but got ':'"),
])
def test_each_problem_is_reported_on_its_line(edit, expected):
    assert errors_of(GOOD.replace(*edit)) == [expected]


def test_an_unknown_department_is_reported_on_its_list_item():
    (error,) = errors_of(GOOD.replace("[fire_rescue]\ntests", "[fire_rescue,\n  fire]\ntests"))
    assert error.startswith("r.yaml:8: route.routes.0.departments: unknown department 'fire'; "
                            "known: $alert (the alert's own), emergency_management, ")


def test_a_file_that_is_not_a_mapping_is_refused():
    assert errors_of("- route") == [
        "r.yaml:1: a routing file is a mapping: defaults, route, tests"]


# -- the command line ---------------------------------------------------------------------


def test_dispatch_check_passes_the_shipped_file_and_fails_a_broken_one(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(dispatch_app, ["check", str(DEFAULT_ROUTES), "--rules",
                                      str(REPO / "rules")])
    assert ok.exit_code == 0, ok.output
    assert "0 failed" in ok.output
    broken = tmp_path / "routes.yaml"
    broken.write_text(GOOD.replace("expect: [fire_rescue]", "expect: [transport]"))
    failed = runner.invoke(dispatch_app, ["check", str(broken)])
    assert failed.exit_code == 1
    assert f"FAIL {broken}:9: a tank alert" in failed.output
    assert "missing:  transport" in failed.output


def test_dispatch_test_prints_the_routes_and_departments(tmp_path):
    routes = tmp_path / "routes.yaml"
    routes.write_text(GOOD)
    result = CliRunner().invoke(dispatch_app, [
        "test", str(routes), "model_id=hazchem.tank.level_high", "severity=red",
        "departments=emergency_management,transport", "district=xihu", "--expect", "fire_rescue"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "route: root > tanks -> fire_rescue",
        "starts at the district level",
        "departments: fire_rescue (acknowledge within 5m at district, 5m at city)"]
    wrong = CliRunner().invoke(dispatch_app, ["test", str(routes), "model_id=x.y",
                                              "severity=red", "--expect", "transport"])
    assert wrong.exit_code == 1
