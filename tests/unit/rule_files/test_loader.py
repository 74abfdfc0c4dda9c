"""The rule loader reports every problem as file:line: message and loads nothing broken."""

from pathlib import Path

from typer.testing import CliRunner

from engine.cli import app
from engine.rule_files.loader import compile_rule_text, load_rules

GOOD = """\
id: test.tank.level_high
name: {zh: 储罐液位高, en: Tank level high}
departments: [emergency_management]
source: events.hazchem.facility
kind: threshold
condition: level_pct >= 90
severity: yellow
summary: "tank {tank_id} at {level_pct}%"
description: Level at or above 90%.
tests:
  - name: fires
    given: {tank_id: T1, facility_id: F1}
    events: [{at: 0s, level_pct: 91}]
    expect: [{at: 0s}]
  - name: silent
    given: {tank_id: T1, facility_id: F1}
    events: [{at: 0s, level_pct: 89}]
    expect: []
"""


def errors_of(text: str) -> list[str]:
    rule, errors = compile_rule_text(text, Path("r.yaml"))
    assert (rule is None) == bool(errors)
    return [str(e) for e in errors]


def test_a_good_file_compiles():
    rule, errors = compile_rule_text(GOOD, Path("r.yaml"))
    assert errors == []
    assert rule is not None
    assert rule.id == "test.tank.level_high"
    assert rule.key_field == "tank_id"
    assert rule.state_key.startswith("test.tank.level_high@")


def test_yaml_syntax_error_has_its_line():
    assert errors_of(GOOD.replace("severity: yellow", "severity: [yellow")) == [
        "r.yaml:8: not valid YAML: expected ',' or ']', but got ':'"]


def test_unknown_field_in_condition_lists_the_topic_fields():
    (error,) = errors_of(GOOD.replace("level_pct >= 90", "levle_pct >= 90"))
    assert error.startswith("r.yaml:6: unknown field 'levle_pct' in condition; "
                            "events.hazchem.facility has: ")
    assert "level_pct" in error


def test_cel_syntax_error_is_reported_on_its_line():
    (error,) = errors_of(GOOD.replace("level_pct >= 90", "level_pct >= "))
    assert error.startswith("r.yaml:6: condition: not a valid CEL expression")


def test_misspelt_parameter_names_what_the_kind_takes():
    assert errors_of(GOOD.replace("condition:", "conditon:")) == [
        "r.yaml:1: condition: required field is missing",
        "r.yaml:6: conditon: unknown field (allowed here: kind threshold takes condition, "
        "clear)"]


def test_unknown_kind_and_bad_values():
    (unknown,) = errors_of(GOOD.replace("kind: threshold", "kind: treshold"))
    assert unknown.startswith("r.yaml:5: kind: unknown kind 'treshold'; known: absence, ")
    assert "threshold" in unknown.split("known: ")[1].split(", ")
    assert errors_of(GOOD.replace("severity: yellow", "severity: purple")) == [
        "r.yaml:7: severity: Input should be 'blue', 'yellow', 'orange' or 'red'"]


NEEDS_BOTH = ("r.yaml:10: tests: a rule needs at least one test that expects an alert and one "
              "that expects none (expect: []); ")


def test_both_sides_must_be_tested():
    one_sided = GOOD.replace("events: [{at: 0s, level_pct: 89}]\n    expect: []",
                             "events: [{at: 0s, level_pct: 95}]\n    expect: [{at: 0s}]")
    assert errors_of(one_sided) == [NEEDS_BOTH + "every test here expects an alert"]
    only_silent = GOOD.replace("expect: [{at: 0s}]", "expect: []")
    assert errors_of(only_silent) == [NEEDS_BOTH + "every test here expects none"]


def test_too_few_tests_are_explained_in_a_modellers_words_on_the_tests_line():
    only_firing = GOOD.split("  - name: silent")[0]
    assert errors_of(only_firing) == [NEEDS_BOTH + "every test here expects an alert"]
    only_silent = GOOD.replace(GOOD[GOOD.index("  - name: fires"):GOOD.index("  - name: silent")],
                               "")
    assert errors_of(only_silent) == [NEEDS_BOTH + "every test here expects none"]
    assert errors_of(GOOD.split("tests:")[0] + "tests: []\n") == [NEEDS_BOTH + "there are none"]


def test_duplicate_ids_reject_the_later_file(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(GOOD, encoding="utf-8")
    result = load_rules([tmp_path])
    assert [r.file.name for r in result.rules] == ["a.yaml"]
    assert [str(e) for e in result.errors] == [
        f"{tmp_path / 'b.yaml'}:1: id 'test.tank.level_high' is already used by "
        f"{tmp_path / 'a.yaml'}"]


def test_a_changed_condition_changes_the_state_key_but_wording_does_not():
    base, _ = compile_rule_text(GOOD, Path("r.yaml"))
    reworded, _ = compile_rule_text(GOOD.replace("Level at or above", "At least"),
                                    Path("r.yaml"))
    changed, _ = compile_rule_text(GOOD.replace(">= 90", ">= 91"), Path("r.yaml"))
    assert base and reworded and changed
    assert base.state_key == reworded.state_key != changed.state_key


VOCABULARY = """\
lists:
  alarm_levels: [90, 95]
macros:
  high: level_pct >= alarm_levels[0]
  high_and_warm: high && temp_c > 30
"""


def test_lists_and_macros_are_shared_and_shown_as_written(tmp_path):
    (tmp_path / "vocabulary.yaml").write_text(VOCABULARY, encoding="utf-8")
    (tmp_path / "rule.yaml").write_text(
        GOOD.replace("condition: level_pct >= 90", "condition: high_and_warm"),
        encoding="utf-8")
    result = load_rules([tmp_path])
    assert [str(e) for e in result.errors] == []
    (rule,) = result.rules
    assert rule.model.condition.source == "high_and_warm"
    assert rule.model.condition.expanded == "((level_pct >= alarm_levels[0]) && temp_c > 30)"
    assert rule.model.condition.evaluate({"level_pct": 91, "temp_c": 31}) is True
    assert rule.model.condition.evaluate({"level_pct": 89, "temp_c": 31}) is False


def test_vocabulary_problems_are_reported_with_lines(tmp_path):
    (tmp_path / "a.yaml").write_text(VOCABULARY, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(
        "macros:\n  high: level_pct > 1\n  level_pct: 1 > 0\n  ping: pong\n  pong: ping\n"
        "  Bad-Name: x\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(
        GOOD.replace("condition: level_pct >= 90", "condition: high && undefined_thing"),
        encoding="utf-8")
    errors = [str(e).replace(str(tmp_path) + "/", "") for e in load_rules([tmp_path]).errors]
    assert errors == [
        "b.yaml:6: macros.Bad-Name: String should match pattern '^[a-z_][a-z0-9_]*$'",
        "c.yaml:6: unknown field 'undefined_thing' in condition; events.hazchem.facility has: "
        + errors[1].split("has: ")[1],
    ]


def test_macro_cycles_and_field_names_are_rejected(tmp_path):
    (tmp_path / "v.yaml").write_text(
        "macros:\n  level_pct: 1 > 0\n  ping: pong\n  pong: ping\n", encoding="utf-8")
    errors = [str(e).replace(str(tmp_path) + "/", "") for e in load_rules([tmp_path]).errors]
    assert errors == [
        "v.yaml:2: 'level_pct' is an event field; a list or macro of that name would hide it",
        "v.yaml:3: macros.ping: macro 'ping' refers to itself: ping -> pong -> ping",
        "v.yaml:4: macros.pong: macro 'pong' refers to itself: pong -> ping -> pong",
    ]


TREES = """\
id: test.tank.pressure_unusual
name: {zh: 储罐压力异常, en: Tank pressure unusual}
departments: [emergency_management]
source: events.hazchem.facility
kind: anomaly
field: pressure_kpa
detector: half_space_trees
window: 60
warmup: 100
severity: yellow
summary: "tank {tank_id} at {pressure_kpa} kPa"
description: Pressure unlike the tank's own recent readings.
tests:
  - name: fires
    events: [{at: 0s, pressure_kpa: 91}]
    expect: [{at: 0s}]
  - name: silent
    events: [{at: 0s, pressure_kpa: 89}]
    expect: []
"""


def test_a_tree_warmup_shorter_than_two_windows_names_its_minimum_on_the_warmup_line():
    reason = "(half_space_trees score nothing before their first window)"
    assert errors_of(TREES) == [f"r.yaml:9: warmup: at least 120 for window 60 {reason}"]
    default_window = TREES.replace("window: 60\n", "")
    assert errors_of(default_window) == [f"r.yaml:8: warmup: at least 200 for window 100 {reason}"]
    # exactly twice the window is enough; a window that is itself wrong is the only error
    assert errors_of(TREES.replace("warmup: 100", "warmup: 120")) == []
    assert errors_of(TREES.replace("window: 60", "window: 1")) == [
        "r.yaml:8: window: Input should be greater than or equal to 2"]


def test_a_series_in_a_rule_test_stands_for_its_events(tmp_path):
    # What a learned model needs hundreds of readings for, written in one line.
    from engine.offline.ruletest import run_rule_test
    from tests.rulekit import FACILITY, rule_text

    text = rule_text(id="test.tank.window", source=FACILITY, kind="window", aggregate="count",
                     size="1h", condition="value >= 30", tests=[
                         {"name": "thirty readings within the hour fire at the thirtieth",
                          "given": {"tank_id": "T1", "facility_id": "F1"},
                          "events": [{"at": "0s", "every": "1m", "repeat": 30,
                                      "cycle": {"level_pct": [50, 51, 52]}}],
                          "expect": [{"at": "29m", "state": "firing"}]},
                         {"name": "twenty-nine stay silent",
                          "given": {"tank_id": "T1", "facility_id": "F1"},
                          "events": [{"at": "0s", "every": "1m", "repeat": 29}],
                          "expect": []}])
    rule, errors = compile_rule_text(text, tmp_path / "r.yaml")
    assert errors == [] and rule is not None
    assert [run_rule_test(rule, t).passed for t in rule.spec.tests] == [True, True]
    (line,) = rule.spec.tests[0].events
    assert [f["level_pct"] for _, f in line.expanded()][:4] == [50, 51, 52, 50]
    import yaml

    doc = yaml.safe_load(text)
    del doc["tests"][1]["events"][0]["every"]
    _, errors = compile_rule_text(yaml.safe_dump(doc), tmp_path / "r.yaml")
    assert any("a series ('repeat') needs 'every'" in e.message for e in errors), errors


SPEEDING = """\
id: test.vehicle.overspeed
name: {zh: 超速, en: Overspeed}
departments: [transport]
source: events.hazchem.vehicle
kind: threshold
condition: road_class == "highway" && speed_kmh > 80
severity: orange
summary: "{vehicle_id} at {speed_kmh}"
description: Over 80 km/h on a highway.
tests:
  - name: fires
    given: {vehicle_id: V1, lat: 30.2, lon: 120.1, road_class: highway}
    events: [{at: 0s, speed_kmh: 81}]
    expect: [{at: 0s}]
  - name: silent
    given: {vehicle_id: V1, lat: 30.2, lon: 120.1, road_class: highway}
    events: [{at: 0s, speed_kmh: 80}]
    expect: []
"""


def warnings_of(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "r.yaml").write_text(text, encoding="utf-8")
    result = load_rules([tmp_path], warn_absent_fields=True)
    assert result.errors == [] and len(result.rules) == 1  # a warning loads the rule all the same
    return [str(w).replace(str(tmp_path) + "/", "") for w in result.warnings]


def test_a_condition_a_missing_field_silences_is_warned_of_on_its_line(tmp_path):
    assert warnings_of(tmp_path, SPEEDING) == [
        'r.yaml:6: warning: condition never holds without road_class, and an event without it '
        'reads as not breaching: speed_kmh=81.0 breaches with road_class="highway" but not '
        'without it. Give the absence a fallback (road_class == null) or list road_class '
        'under silent_without']
    assert load_rules([tmp_path]).warnings == []  # only when asked (yujing validate)


def test_a_fallback_an_opt_out_or_an_undecided_condition_is_not_warned_of(tmp_path):
    fallback = SPEEDING.replace('road_class == "highway" &&',
                                '(road_class == "highway" || road_class == null) &&')
    opted_out = SPEEDING.replace("kind: threshold", "kind: threshold\nsilent_without: [road_class]")
    left_out = SPEEDING.replace("kind: threshold", "kind: threshold\nwhere: road_class != null")
    # Without tank_temp_c the comparison is null, not false: undecided, and counted as such.
    undecided = SPEEDING.replace('road_class == "highway" && speed_kmh > 80', "tank_temp_c > 50")
    for text in (fallback, opted_out, left_out, undecided):
        assert warnings_of(tmp_path, text) == []


def test_silent_without_must_name_fields_of_the_source():
    (error,) = errors_of(SPEEDING.replace("kind: threshold",
                                          "kind: threshold\nsilent_without: [road_klass]"))
    assert error.startswith("r.yaml:6: silent_without: unknown field 'road_klass'; "
                            "events.hazchem.vehicle has: ")


def test_validate_prints_warnings_and_still_exits_0(tmp_path):
    (tmp_path / "r.yaml").write_text(SPEEDING, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"{tmp_path}/r.yaml:6: warning: condition never holds without road_class" \
        in result.output
    assert "1 rule files valid, 0 problems, 1 warnings" in result.output
