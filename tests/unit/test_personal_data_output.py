"""What leaves by the log and the CLI: phone and ID numbers masked, whatever quoted them."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

from typer.testing import CliRunner

from engine.cli import app
from engine.cli_output import say
from engine.history import alert_line, alert_story, alert_views, render_list, render_story
from engine.log_format import JsonFormatter, TextFormatter
from engine.tracking.store import LifeRecords
from tests.unit.tracking.recordkit import alert, feedback, order

ROOT = Path(__file__).resolve().parents[2]
MOBILE, ID_NUMBER, LANDLINE = "13812345678", "330102199001011234", "0571-87654321"
RAW = (MOBILE, ID_NUMBER, "87654321")


def _record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"bad caller {MOBILE}")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("yujing.worker", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_a_log_line_quoting_an_event_is_masked_in_both_formats():
    event = {"ticket_id": "K1", "text": f"回电{MOBILE}，身份证{ID_NUMBER}，座机{LANDLINE}",
             "order": "202406030001"}
    record = _record("a record could not be scored: %r", event, exc=True)
    text = TextFormatter().format(record)
    line = JsonFormatter().format(record)
    for out in (text, json.loads(line)["message"] + json.loads(line)["exc"]):
        assert not any(raw in out for raw in RAW), out
        assert "138****5678" in out and "330102********1234" in out and "202406030001" in out
    assert "ValueError: bad caller 138****5678" in text


def test_the_root_handlers_a_process_sets_up_mask_in_either_format():
    from engine.log_format import apply

    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # as Faust's own handler, which apply reformats
    root.addHandler(handler)
    try:
        for fmt in ("text", "json"):
            apply(fmt)
            handler.handle(_record("ticket %s: caller %s", "K1", MOBILE))
    finally:
        root.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["message"] == "ticket K1: caller 138****5678"
    assert lines[0].endswith("ERROR yujing.worker: ticket K1: caller 138****5678")


def test_the_alert_history_prints_masked_even_for_records_written_unmasked(capsys):
    # An alert recorded before the engine masked, and a department's note quoting a number.
    fired = alert("a1", "hotline.ticket.gas_smell", key="K1",
                  summary=f"ticket K1 reports a gas smell: 回电{MOBILE}，身份证{ID_NUMBER}")
    records = LifeRecords()
    records.add_alert(fired)
    records.add_order(order("o1", alert_ids=("a1",), models=("hotline.ticket.gas_smell",)))
    records.add_feedback(feedback("o1", "acknowledged", 60, note=f"called back {LANDLINE}"))
    story = alert_story(records, "a1")
    assert story is not None
    say(render_list(alert_views([fired])))
    say(render_story(story))
    say(alert_line(fired), err=True)
    out, err = capsys.readouterr()
    for printed in (out, err):
        assert not any(raw in printed for raw in RAW), printed
    assert "回电138****5678" in out and "called back 0571-****4321" in out


def test_replay_prints_alerts_without_the_numbers_of_the_tickets(tmp_path):
    events = tmp_path / "tickets.jsonl"
    events.write_text(json.dumps(
        {"event_id": "e1", "ts": "2024-06-03T08:00:00+08:00", "ticket_id": "K1",
         "category": "gas_smell", "status": "new", "district": "xihu", "grid_id": "G0305",
         "caller_phone": MOBILE, "caller_name": "张三",
         "text": f"燃气味，回电{MOBILE}，身份证{ID_NUMBER}"}, ensure_ascii=False) + "\n",
        encoding="utf-8")
    result = CliRunner().invoke(app, [
        "replay", str(events), "--topic", "events.hotline.ticket",
        "--rules", str(ROOT / "rules/hotline/gas_smell_reported.yaml")])
    assert result.exit_code == 0, result.output
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(alerts) == 1
    assert alerts[0]["summary"].endswith("燃气味，回电138****5678，身份证330102********1234")
    assert not any(raw in result.output for raw in RAW)
    assert "张三" not in result.output
