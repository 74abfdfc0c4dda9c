"""The rule loader reports every problem as file:line: message and loads nothing broken."""

from pathlib import Path

from engine.loader import compile_rule_text, load_rules

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
    assert errors_of(GOOD.replace("kind: threshold", "kind: treshold")) == [
        "r.yaml:5: kind: unknown kind 'treshold'; known: absence, threshold, window"]
    assert errors_of(GOOD.replace("severity: yellow", "severity: purple")) == [
        "r.yaml:7: severity: Input should be 'blue', 'yellow', 'orange' or 'red'"]


def test_both_sides_must_be_tested():
    one_sided = GOOD.replace("events: [{at: 0s, level_pct: 89}]\n    expect: []",
                             "events: [{at: 0s, level_pct: 95}]\n    expect: [{at: 0s}]")
    assert errors_of(one_sided) == [
        "r.yaml:10: tests: needs at least one test that expects an alert and one that expects "
        "none (expect: [])"]


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
