"""``yujing report --from-files``: the period's scorecards as a table, CSV or JSON, no broker."""

from __future__ import annotations

import csv
import io
import json

from typer.testing import CliRunner

from engine.cli import app
from tests.unit.tracking.recordkit import T0, alert, feedback, order
from topics.records import Scorecard

runner = CliRunner()


def write_files(tmp_path, extra_order_lines=()):
    alerts = [alert("A1"), alert("A1"), alert("A2", at=10), alert("A3", model_id="m.quiet"),
              alert("A4", model_id="m.fresh", departments=["police"], silenced_by=["S1"])]
    orders = [
        # fire: one red acknowledged in 2 min (met), one after 10 min (missed)
        order("F1", ack=120, resolved=1800, alert_ids=("A1",)),
        order("F2", created=60, ack=600, state="acknowledged", alert_ids=("A2",)),
        # water: both within their limits
        order("W1", department="water", severity="yellow", ack=900, resolved=3600,
              models=("m.quiet",)),
        order("W2", department="water", severity="orange", ack=300, state="false_alarm",
              models=("m.noisy",)),
    ]
    fb = [feedback("F2", "false_alarm", at=2000), feedback("F1", "acknowledged", at=120)]
    paths = [tmp_path / name for name in ("alerts.jsonl", "orders.jsonl", "feedback.jsonl")]
    lines = [[a.model_dump_json() for a in alerts],
             [o.model_dump_json() for o in orders] + list(extra_order_lines),
             [f.model_dump_json() for f in fb]]
    for path, content in zip(paths, lines, strict=True):
        path.write_text("\n".join(content) + "\n", encoding="utf-8")
    return [str(p) for p in paths]


def report(files, *args):
    result = runner.invoke(app, ["report", "--from-files", *files, *args])
    assert result.exit_code == 0, result.output
    return result


def test_table_puts_the_worst_sla_and_the_noisiest_model_first(tmp_path):
    result = report(write_files(tmp_path))
    # the period ends at the newest record: W1 resolved 3600 s after T0
    assert result.stdout == "\n".join([
        "yujing report 2024-06-02 09:00 – 2024-06-03 09:00 (Asia/Shanghai)",
        "",
        "Departments, worst SLA first",
        "department  orders  ack p50  ack p90  resolve p50  resolve p90  SLA         backlog"
        "  false alarms",
        "fire             2       2m      10m          30m          30m  50% (1/2)         0"
        "             1",
        "water            2       5m      15m           1h           1h  100% (2/2)        0"
        "             1",
        "police           0        –        –            –            –  –                 0"
        "             0",
        "",
        "Models, noisiest first",
        "model    alerts  not dispatched  orders  closed  false alarms  false-alarm rate",
        "m.noisy       2               0       3       3             2  66.7% (2/3)",
        "m.quiet       1               0       1       1             0  0% (0/1)",
        "m.fresh       1               1       0       0             0  –",
        "",
        "Command levels (each from when it got the order), lowest first",
        "level     reached  took  ack p50  ack p90  resolve p50  SLA        holds",
        "district        4     4       5m      15m          30m  75% (3/4)      0",
        "",
    ])
    assert result.stderr == ""


def test_csv_has_every_scorecard_field_in_report_order(tmp_path):
    rows = list(csv.DictReader(io.StringIO(report(write_files(tmp_path), "--format",
                                                  "csv").stdout)))
    assert list(rows[0]) == list(Scorecard.model_fields)
    assert [(r["scope"], r["name"]) for r in rows] == [
        ("department", "fire"), ("department", "water"), ("department", "police"),
        ("model", "m.noisy"), ("model", "m.quiet"), ("model", "m.fresh"),
        ("level", "district")]
    fire = rows[0]
    assert (fire["sla_met"], fire["sla_total"], fire["sla_compliance"]) == ("1", "2", "0.5")
    noisy = rows[3]
    assert (noisy["closed"], noisy["false_alarms"], noisy["false_alarm_rate"][:6]) == (
        "3", "2", "0.6666")
    assert rows[2]["sla_compliance"] == ""  # nothing judged: empty, not zero


def test_json_gives_the_period_and_the_scorecards(tmp_path):
    got = json.loads(report(write_files(tmp_path), "--format", "json", "--since", "2h").stdout)
    assert (got["period_start"], got["period_end"]) == (T0 - 3600, T0 + 3600)
    noisy = Scorecard.model_validate(got["models"][0])
    assert (noisy.name, noisy.false_alarms, noisy.resolved, noisy.orders, noisy.closed) == (
        "m.noisy", 2, 1, 3, 3)
    assert noisy.false_alarm_rate is not None and round(noisy.false_alarm_rate, 4) == 0.6667
    assert [d["name"] for d in got["departments"]] == ["fire", "water", "police"]


def test_until_and_sla_options_change_the_period_and_the_limits(tmp_path):
    files = write_files(tmp_path)
    got = json.loads(report(files, "--format", "json", "--until", "2024-06-03T08:20:00",
                            "--sla", "red=15m").stdout)
    assert got["period_end"] == T0 + 1200
    fire = Scorecard.model_validate(got["departments"][0])
    # F2's false alarm (2000 s) and F1's resolution (1800 s) are known already, as recorded;
    # with a 15-minute red limit both acknowledgements are in time
    assert (fire.name, fire.sla_met, fire.sla_total) == ("fire", 2, 2)


def test_malformed_lines_are_skipped_and_named(tmp_path):
    files = write_files(tmp_path, extra_order_lines=['{"order_id": "X"', ""])
    result = report(files)
    assert result.stderr == (f"skipped: {files[1]}: line 5: dispatch.orders: not JSON: "
                             "unexpected end of data: line 1 column 17 (char 16)\n")
    assert "fire             2" in result.stdout
