"""Personal data: the patterns found in free text, the masks, the keyed token, the schema policy."""

from __future__ import annotations

import pytest

from topics import personal_data
from topics.personal_data import (
    DEVELOPMENT_KEY,
    OutputProtection,
    field_policies,
    hash_token,
    hashing_key,
    is_id_number,
    mask_text,
    mask_value,
)
from topics.registry import EVENT_TOPICS
from topics.schemas import Coach, HazchemVehicle, HazchemWaybill, HotlineTicket, PoliceIncident

MOBILE = "13812345678"
ID_NUMBER = "330102199001011234"
ID_ENDING_IN_X = "11010519491231002X"
LANDLINE = "0571-87654321"


@pytest.mark.parametrize(("text", "masked"), [
    (MOBILE, "138****5678"),
    (f"来电人{MOBILE}反映", "来电人138****5678反映"),
    ("call 139 1234 5678", "call 139 **** 5678"),
    ("+8615912345678", "+86159****5678"),
    (ID_NUMBER, "330102********1234"),
    (f"身份证号{ID_ENDING_IN_X}。", "身份证号110105********002X。"),
    (ID_ENDING_IN_X.lower(), "110105********002x"),
    (LANDLINE, "0571-****4321"),
    ("(0571)87654321", "(0571)****4321"),
    ("010 62345678-12", "010 ****5678-12"),
])
def test_phone_and_id_numbers_in_text_are_masked(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize("text", [
    "order 202406030001",                  # a 12-digit order number
    "order 13812345678901",                # 14 digits starting like a mobile
    "2024-06-03T08:00:31+08:00",           # a timestamp
    "2024-06-03 08:00:31",
    "epoch 1717372800, 1717372800123 ms",  # epoch seconds and milliseconds
    "at 30.274100,120.155100",             # coordinates
    "lon 120.13812345678",                 # a coordinate whose decimals look like a mobile
    "grid G330102 HZ-0571-0305",           # grid ids
    "浙A12345 浙A1381234",                  # plates
    "waybill 202406031234567890",          # 18 digits without a birth date
    "330102199001011235",                  # an ID's shape with a wrong check digit
    "330102199013011234",                  # month 13
    "alert a9f13812345678bc",              # a hex id with a mobile's digits inside
])
def test_numbers_that_are_not_personal_are_left_alone(text):
    assert mask_text(text) == text


def test_the_id_number_check_is_the_national_standards():
    assert is_id_number(ID_NUMBER) and is_id_number(ID_ENDING_IN_X)
    assert not is_id_number("330102190001011234")  # check digit of another number
    assert not is_id_number("330102199002301234")  # 30 February


def test_the_token_is_stable_and_keyed():
    token = hash_token(MOBILE, b"city key")
    assert token == hash_token(MOBILE, b"city key") == hash_token(f" {MOBILE} ", b"city key")
    assert token != hash_token(MOBILE, b"another key")
    assert token != hash_token("13812345679", b"city key")
    assert token.startswith("h:") and len(token) == 14
    assert MOBILE not in token and "5678" not in token


def test_the_configured_key_is_read_from_the_environment_or_a_file(monkeypatch, tmp_path):
    try:
        monkeypatch.setenv("YUJING_PERSONAL_DATA__KEY", "city key")
        personal_data.configured_key.cache_clear()
        assert hash_token(MOBILE) == hash_token(MOBILE, b"city key")

        monkeypatch.delenv("YUJING_PERSONAL_DATA__KEY")
        (tmp_path / "key").write_bytes(b"file key\n")
        monkeypatch.setenv("YUJING_PERSONAL_DATA__KEY_FILE", str(tmp_path / "key"))
        personal_data.configured_key.cache_clear()
        assert hash_token(MOBILE) == hash_token(MOBILE, b"file key")
        with hashing_key(DEVELOPMENT_KEY):  # what rule-file tests pin
            assert hash_token(MOBILE) == hash_token(MOBILE, DEVELOPMENT_KEY)
        assert hash_token(MOBILE) == hash_token(MOBILE, b"file key")
    finally:
        personal_data.configured_key.cache_clear()


def test_masking_a_declared_value_keeps_a_little_for_the_duty_officer():
    assert mask_value(MOBILE) == "138****5678"
    assert mask_value(ID_NUMBER) == "330102********1234"
    assert mask_value("张三") == "张*"
    assert mask_value("DRV-20240001") == "DRV******001"


def test_every_schema_declares_its_personal_fields():
    declared = {topic: field_policies(spec.schema) for topic, spec in EVENT_TOPICS.items()}
    assert {topic: policies for topic, policies in declared.items() if policies} == {
        "events.hazchem.vehicle": {"driver_id": "hash"},
        "events.hazchem.waybill": {"driver_id": "hash"},
        "events.hotline.ticket": {"caller_phone": "mask", "caller_name": "drop"},
        "events.police.incident": {"reporter_phone": "mask", "reporter_name": "drop"},
        "events.transport.coach": {"driver_id": "hash"},
    }
    # Declaring a policy changes nothing the rules see: the schemas keep the original value.
    ticket = HotlineTicket(event_id="e", ts="2024-06-03T08:00:00", ticket_id="K1",
                           category="noise", status="new", caller_phone=MOBILE)
    assert ticket.caller_phone == MOBILE
    assert {HazchemVehicle, HazchemWaybill, Coach, PoliceIncident} <= {
        spec.schema for spec in EVENT_TOPICS.values()}


def test_a_record_leaves_with_its_personal_values_protected_wherever_they_appear():
    event = {"ticket_id": "K1", "caller_phone": MOBILE, "caller_name": "张三",
             "driver_id": ID_NUMBER, "text": f"请回电 {LANDLINE}"}
    with hashing_key(b"k"):
        guard = OutputProtection.of(event, {"caller_phone": "mask", "caller_name": "drop",
                                            "driver_id": "hash"})
        out = guard.record({**event, "entity": ID_NUMBER,
                            "signals": {"hotline": {"caller_name": "张三", "seen": [MOBILE]}}})
        token = hash_token(ID_NUMBER)
    assert out == {"ticket_id": "K1", "caller_phone": "138****5678", "driver_id": token,
                   "text": "请回电 0571-****4321", "entity": token,
                   "signals": {"hotline": {"seen": ["138****5678"]}}}


def test_a_phone_number_sent_as_a_json_number_is_masked_too():
    guard = OutputProtection.of({}, {})
    assert guard.record({"callback": 13812345678, "ts_ms": 1717372800123, "count": 3}) == {
        "callback": "138****5678", "ts_ms": 1717372800123, "count": 3}
