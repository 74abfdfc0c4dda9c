"""An alert leaves the engine with personal data protected; the rule still scored the original."""

from __future__ import annotations

from pathlib import Path

import orjson

from engine.core import MemoryStore, ScoringCore
from engine.rule_files.loader import load_rules
from tests.rulekit import drive, event, rule
from topics.personal_data import hash_token, hashing_key

ROOT = Path(__file__).resolve().parents[3]
TICKET = "events.hotline.ticket"
MOBILE, ID_NUMBER, ID_ENDING_IN_X = "13812345678", "330102199001011234", "11010519491231002X"
LANDLINE = "0571-87654321"
NOT_PERSONAL = ("202406030001", "G0305")  # an order number and a grid id the text also names


def _text(alert) -> str:
    return alert.summary + orjson.dumps(alert.evidence).decode() + alert.key


def test_a_gas_smell_ticket_with_a_phone_and_an_id_number_fires_without_either():
    gas_smell = [r for r in load_rules([ROOT / "rules/hotline/gas_smell_reported.yaml"]).rules]
    text = (f"楼道燃气味很重，来电人{MOBILE}，身份证{ID_NUMBER}，家属{ID_ENDING_IN_X}，"
            f"座机{LANDLINE}，工单{NOT_PERSONAL[0]}，网格{NOT_PERSONAL[1]}")
    alerts = drive(ScoringCore(gas_smell, MemoryStore()), [
        event(TICKET, 1717372800, ticket_id="K1", district="xihu", grid_id="G0305",
              category="gas_smell", status="new", text=text)])
    assert [a.state for a in alerts] == ["firing"]  # scored on the original text
    out = _text(alerts[0])
    for number in (MOBILE, ID_NUMBER, ID_ENDING_IN_X, "87654321"):
        assert number not in out
    assert "来电人138****5678" in alerts[0].summary
    assert "身份证330102********1234" in alerts[0].summary
    assert "家属110105********002X" in alerts[0].summary
    assert "座机0571-****4321" in alerts[0].summary
    assert all(kept in alerts[0].summary for kept in NOT_PERSONAL)


def test_a_condition_on_a_phone_number_sees_it_and_the_alert_shows_it_masked():
    caller = rule(source=TICKET, kind="threshold", key="ticket_id",
                  condition=f'caller_phone == "{MOBILE}"',
                  summary="{ticket_id}: caller {caller_name} at {caller_phone} says {text}")
    alerts = drive(ScoringCore([caller], MemoryStore()), [
        event(TICKET, 1717372800, ticket_id="K1", category="noise", status="new",
              caller_phone=MOBILE, caller_name="张三", text=f"另一号码 {MOBILE}")])
    assert len(alerts) == 1
    assert alerts[0].summary == "K1: caller [withheld] at 138****5678 says 另一号码 138****5678"
    assert "张三" not in _text(alerts[0]) and MOBILE not in _text(alerts[0])


def test_a_driver_is_the_same_keyed_token_in_every_alert_and_in_the_lookup_evidence():
    unqualified = rule(source="events.hazchem.waybill", kind="lookup", list="qualified_drivers",
                       field="driver_id", match="not_in_force",
                       summary="waybill {waybill_id}: driver {driver_id} ({entry})")
    events = [event("events.hazchem.waybill", 1717372800 + i, waybill_id=f"W{i}",
                    vehicle_id="V1", company_id="C1", status="issued", driver_id=ID_NUMBER)
              for i in range(2)]
    with hashing_key(b"city key"):
        alerts = drive(ScoringCore([unqualified], MemoryStore()), events)
    token = hash_token(ID_NUMBER, b"city key")
    assert [a.summary for a in alerts] == [f"waybill W0: driver {token} (missing)",
                                           f"waybill W1: driver {token} (missing)"]
    assert all(a.evidence.get("entity") == token for a in alerts)
    assert all(ID_NUMBER not in _text(a) for a in alerts)
    with hashing_key(b"another city"):
        again = drive(ScoringCore([unqualified], MemoryStore()), events[:1])
    assert token not in again[0].summary
