"""Rule files are untrusted input: whatever a file holds, ``yujing validate`` answers with
``file:line: reason`` and exit 1 — no traceback, in bounded time and memory — and the loader
rejects the file while the other files load."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from engine.cli import app
from engine.rule_files.loader import load_rules
from tests.rulekit import FACILITY, rule_text

BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f'{c}: &{c} [{",".join(["*" + p] * 9)}]\n' for p, c in zip("abcdefgh", "bcdefghi", strict=True))


def good(**fields: object) -> str:
    return rule_text(**{"id": "test.tank.hot", "source": FACILITY, "kind": "threshold",
                        "condition": "temp_c > 60", **fields})


HOSTILE = {
    "nested_parentheses": (good(condition="(" * 100_000 + "temp_c > 1" + ")" * 100_000),
                           "condition: the condition is 200010 characters long (at most 2000)"),
    "deep_brackets": (good(condition="(" * 40 + "temp_c > 1" + ")" * 40),
                      "brackets nest 40 deep (at most 32)"),
    "operator_chain": (good(condition="!" * 1980 + "(temp_c > 1)"), "nested too deeply"),
    "two_megabyte_condition": (good(condition="temp_c > 1" + " && temp_c > 1" * 150_000),
                               "more than the 524288 a rule file may have"),
    "billion_laughs": (BILLION_LAUGHS, "YAML aliases expand to more than 100000 values"),
    "recursive_alias": ("id: &a [*a]\n", "a YAML alias refers to the value that contains it"),
    "deep_yaml": ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 64 levels deep"),
    "format_width": (good(summary="{temp_c:>2000000}"),
                     "summary: {temp_c:>2000000}: width 2000000 is more than 100"),
    "format_precision": (good(summary="{temp_c:.999999f}"), "precision 999999 is more than 100"),
    "summary_unknown_field": (good(summary="{tank_id} at {temp_cc}"),
                              "summary: {temp_cc}: no field or evidence of that name"),
    "regex_too_large": (good(where='sensor_status.matches("(a{1000}){1000}")'),
                        "exceeds size limit"),
    "regex_invalid": (good(where='sensor_status.matches("[a-")'), "not a valid regex"),
    "not_utf8": ("id: \udcff\n", "cannot read"),
    "not_a_mapping": ("- a\n- b\n", "a rule file is a mapping"),
    "unknown_table": (rule_text(id="test.vehicle.joined", source="events.hazchem.vehicle",
                                kind="joined", condition="record != null",
                                table="reference.nowhere", via="waybill_id"),
                      "table: unknown table 'reference.nowhere'"),
}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    data = text.encode("utf-8", errors="surrogateescape")
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_validate_reports_a_hostile_file_as_file_line_reason(tmp_path, name):
    text, reason = HOSTILE[name]
    path = write(tmp_path, name, text)
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert time.perf_counter() - started < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KB
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    (line,) = [ln for ln in result.output.splitlines() if ln.startswith(str(path))]
    assert line.startswith(f"{path}:") and line.split(":")[1].isdigit(), line
    assert reason in line, line


def test_a_hostile_file_is_rejected_and_the_others_load(tmp_path):
    write(tmp_path, "hot", good())
    for name in ("nested_parentheses", "billion_laughs", "format_width"):
        write(tmp_path, name, HOSTILE[name][0])
    result = load_rules([tmp_path])
    assert [r.id for r in result.rules] == ["test.tank.hot"]
    assert sorted(e.file.stem for e in result.errors) == [
        "billion_laughs", "format_width", "nested_parentheses"]


def test_a_macro_expansion_bomb_is_refused(tmp_path):
    macros = {"m0": "temp_c > 1"} | {f"m{i}": f"m{i - 1} || m{i - 1}" for i in range(1, 30)}
    (tmp_path / "vocabulary").mkdir()
    (tmp_path / "vocabulary" / "bomb.yaml").write_text(yaml.safe_dump({"macros": macros}))
    write(tmp_path, "hot", good(condition="m29"))
    started = time.perf_counter()
    result = load_rules([tmp_path])
    assert time.perf_counter() - started < 5
    assert result.rules == []
    assert any("more than 10000 characters" in e.message for e in result.errors), result.errors


def test_validate_checks_zones_and_lists_against_the_reference_files(tmp_path):
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "zones.yaml").write_text(yaml.safe_dump({
        "table": "reference.zones", "records": {"Z1": {
            "name": "No.1 School", "kind": "school", "center": {"lat": 30, "lon": 120},
            "radius_m": 100}}}))
    write(tmp_path, "school", rule_text(
        id="test.vehicle.school", source="events.hazchem.vehicle", kind="geofence",
        mode="inside", zones=["school", "hospitl"]))
    write(tmp_path, "listed", rule_text(
        id="test.vehicle.listed", source="events.hazchem.vehicle", kind="lookup",
        list="blacklist", field="driver_id"))
    result = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "school.yaml:" in result.output
    assert "zones: 'hospitl' is no zone kind or id of reference.zones (known kinds: school)" \
        in result.output
    assert "list: 'blacklist' is no list of reference.lists (known: none)" in result.output
    # A worker does not check them: its zones may come from the reference topics.
    assert len(load_rules([tmp_path]).rules) == 2


ANOMALY = {"id": "test.tank.pressure", "source": FACILITY, "kind": "anomaly",
           "field": "pressure_kpa"}


@pytest.mark.parametrize(("fields", "reason"), [
    ({"epsilon": 0.5}, "epsilon: Input should be less than 0.01"),
    ({"epsilon": -1}, "epsilon: Input should be greater than 0"),
    ({"clear_at": 1e-7}, "'clear_at' must be above 'epsilon'"),
    ({"learn_for": -3600}, "learn_for: must not be negative"),
    ({"learn_for": "forever"}, "learn_for: not a duration: 'forever'"),
    ({"learn_for": "9" * 5000}, "learn_for: not a duration"),
])
def test_hostile_anomaly_parameters_are_refused_on_their_line(tmp_path, fields, reason):
    path = write(tmp_path, "anomaly", rule_text(**ANOMALY, **fields))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert reason in result.output, result.output


@pytest.mark.parametrize(("line", "reason"), [
    ({"at": "0s", "every": "1m", "repeat": 10 ** 9}, "repeat: Input should be less than or "
                                                     "equal to 20000"),
    ({"at": "0s", "every": "1m", "repeat": 5, "cycle": {"temp_c": []}},
     "'cycle' lists the values a field takes in turn"),
    ({"at": "0s", "repeat": 5}, "a series ('repeat') needs 'every'"),
    ({"at": "0s", "every": "1m", "repeat": 0}, "repeat: Input should be greater than or equal "
                                               "to 1"),
])
def test_hostile_series_in_a_rule_test_are_refused(tmp_path, line, reason):
    tests = [{"name": "fires", "events": [line], "expect": [{"at": "0s"}]},
             {"name": "silent", "events": [], "expect": []}]
    path = write(tmp_path, "series", good(tests=tests))
    started = time.perf_counter()
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert time.perf_counter() - started < 10
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert reason in result.output, result.output


@pytest.mark.parametrize("value", ["forever", "-5m", "9" * 5000, "1e400s"])
def test_hostile_durations_on_the_command_line_are_a_clear_error(tmp_path, value):
    events = tmp_path / "events.jsonl"
    events.write_text("", encoding="utf-8")
    write(tmp_path, "hot", good())
    result = CliRunner().invoke(app, ["replay", str(events), "--rules", str(tmp_path / "hot.yaml"),
                                      "--max-event-age", value])
    assert result.exit_code == 2, result.output
    assert "Invalid value for --max-event-age: not a duration" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(("value", "reason"), [
    ("9" * 5000, "a value cannot be read: Exceeds the limit (4300 digits)"),
    ("9" * 400, "learn_for: not a duration: 9999"),
    (".nan", "learn_for: not a duration: nan seconds is beyond any clock"),
    ("-.inf", "learn_for: not a duration: -inf seconds is beyond any clock"),
])
def test_numbers_no_clock_can_hold_are_refused_on_their_line(tmp_path, value, reason):
    # Unquoted, so YAML reads them as numbers: one too long for Python to build used to end
    # validate with a traceback, one too large for a float with an OverflowError.
    text = rule_text(**ANOMALY) + f"learn_for: {value}\n"
    line = text.count("\n")
    path = write(tmp_path, "numbers", text)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"numbers.yaml:{line}: {reason}" in result.output, result.output
