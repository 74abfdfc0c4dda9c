"""Decoding department payloads: good events typed, bad ones dead-lettered with a reason."""

import base64
import hashlib

import pytest

from topics.bounds import TEXT_MAX_CHARS, fits
from topics.codec import Event, EventTimePolicy, compact_value, decode
from topics.records import DeadLetter

VEHICLE = "events.hazchem.vehicle"


def test_a_valid_event_is_typed_and_keyed_by_the_topic_key():
    ev = decode(VEHICLE, b'{"event_id":"e1","ts":1714501800,"vehicle_id":"V9","lat":30,'
                         b'"lon":120,"speed_kmh":"61.5","extra_field":"kept"}')
    assert isinstance(ev, Event)
    assert (ev.topic, ev.key, ev.ts) == (VEHICLE, "V9", 1714501800.0)
    assert ev.data["speed_kmh"] == 61.5
    assert ev.data["extra_field"] == "kept"


def test_time_without_a_zone_is_city_local_time():
    ev = decode(VEHICLE, {"event_id": "e", "ts": "2024-05-01 02:30:00", "vehicle_id": "V",
                          "lat": 30, "lon": 120, "speed_kmh": 1})
    assert isinstance(ev, Event)
    assert ev.ts == 1714501800.0  # 2024-04-30T18:30:00Z
    assert (ev.data["hour"], ev.data["weekday"]) == (2, 3)


def test_unparsable_bytes_keep_the_original_and_say_why():
    dl = decode(VEHICLE, b"{not json", key=b"V1", partition=2, offset=41)
    assert isinstance(dl, DeadLetter)
    assert (dl.source_topic, dl.partition, dl.offset, dl.key) == (VEHICLE, 2, 41, "V1")
    assert dl.value == "{not json"
    assert dl.reason.startswith("not JSON")


def test_schema_violations_name_each_field():
    dl = decode(VEHICLE, b'{"event_id":"e","ts":"2024-05-01T00:00:00Z","vehicle_id":"V",'
                         b'"lat":95,"speed_kmh":"fast"}')
    assert isinstance(dl, DeadLetter)
    assert "lat: Input should be less than or equal to 90" in dl.reason
    assert "lon: Field required" in dl.reason
    assert "speed_kmh: Input should be a valid number" in dl.reason


def test_a_generic_sensor_of_no_listed_network_decodes_as_other():
    sensor = {"event_id": "e", "ts": 1714501800, "sensor_id": "S1", "metric": "noise_db",
              "value": 71.5, "unit": "dB"}
    ev = decode("events.utilities.sensor", {**sensor, "network": "other"})
    assert isinstance(ev, Event)
    assert (ev.key, ev.data["network"], ev.data["metric"]) == ("S1", "other", "noise_db")
    unknown = decode("events.utilities.sensor", {**sensor, "network": "noise"})
    assert isinstance(unknown, DeadLetter)
    assert "network: Input should be 'water', " in unknown.reason
    assert "'streetlight' or 'other'" in unknown.reason


def test_json_that_is_not_an_object_is_rejected():
    dl = decode(VEHICLE, b"[1, 2]")
    assert isinstance(dl, DeadLetter)
    assert dl.reason == "not a JSON object but list"


def test_unknown_topic_and_binary_payload():
    dl = decode("events.nowhere", b"\xff\xfe\x00")
    assert isinstance(dl, DeadLetter)
    assert dl.reason == "unknown topic 'events.nowhere'"
    assert dl.encoding == "base64"
    assert base64.b64decode(dl.value) == b"\xff\xfe\x00"


def test_every_time_field_without_a_zone_is_city_local_and_routes_are_plain_data():
    ev = decode("events.hazchem.waybill", {
        "event_id": "w", "ts": "2024-05-01 02:30:00", "waybill_id": "W", "vehicle_id": "V",
        "company_id": "C", "status": "issued", "window_end": "2024-05-02T00:00:00",
        "route": [[30.0, 120.0], {"lat": 30.1, "lon": 120.1}]})
    assert isinstance(ev, Event)
    assert ev.data["window_end"].isoformat() == "2024-05-01T16:00:00+00:00"
    assert ev.data["route"] == [{"lat": 30.0, "lon": 120.0}, {"lat": 30.1, "lon": 120.1}]
    assert (ev.data["hour"], ev.data["weekday"]) == (2, 3)


# -- bad input: every record decodes to an event or a dead letter that says why and fits ------

TICKET = "events.hotline.ticket"
NOW = 1_765_000_000.0  # 2025-12-06T05:46:40Z
BOUNDS = EventTimePolicy().around(NOW)


def ticket(**fields):
    return {"event_id": "e", "ts": NOW, "ticket_id": "K1", "category": "gas", "status": "new",
            **fields}


@pytest.mark.parametrize("value", [b'"NaN"', b'"nan"', b'"Infinity"', b'"-Infinity"',
                                   b'"inf"', b"1e400", b"NaN"])
def test_numbers_must_be_finite(value):
    dl = decode(VEHICLE, b'{"event_id":"e","ts":1714501800,"vehicle_id":"V","lat":30,'
                         b'"lon":120,"speed_kmh":1,"tank_pressure_kpa":%b}' % value)
    assert isinstance(dl, DeadLetter)
    if value.startswith(b'"'):
        assert dl.reason_class == "schema"
        assert "tank_pressure_kpa: Input should be a finite number" in dl.reason
    else:  # not JSON at all
        assert dl.reason_class == "not_json"


def test_free_text_is_cut_with_a_marker_and_the_event_scored():
    ev = decode(TICKET, ticket(text="闻到燃气味" + "。" * 614_000))
    assert isinstance(ev, Event)
    assert len(ev.data["text"]) == TEXT_MAX_CHARS
    assert ev.data["text"].startswith("闻到燃气味")
    assert ev.data["text"].endswith("…[cut: 614005 chars]")
    again = decode(TICKET, compact_value(ev))  # what a re-keyed large event becomes
    assert isinstance(again, Event) and again.data["text"] == ev.data["text"]


def test_an_overlong_id_is_rejected_not_cut():
    dl = decode(TICKET, ticket(ticket_id="K" * 10_000))
    assert isinstance(dl, DeadLetter) and dl.reason_class == "schema"
    assert "ticket_id: String should have at most 512 characters" in dl.reason


@pytest.mark.parametrize(("ts", "why"), [
    ("2100-01-01T00:00:00Z", "ahead of the clock"),
    (NOW + 601, "ahead of the clock"),
    (0, "before 2000"),
    ("1970-01-01T00:00:00Z", "before 2000"),
    (NOW - 8 * 86400, "older than the horizon"),
    ("9999-12-31T23:59:59-12:00", "out of range"),
])
def test_event_time_out_of_bounds_is_dead_lettered_with_the_reason(ts, why):
    dl = decode(TICKET, ticket(ts=ts), bounds=BOUNDS)
    assert isinstance(dl, DeadLetter)
    assert dl.reason_class == "event_time"
    assert why in dl.reason


def test_event_time_within_bounds_is_accepted():
    for ts in (NOW + 599, NOW - 6 * 86400):
        assert isinstance(decode(TICKET, ticket(ts=ts), bounds=BOUNDS), Event)
    # No horizon: a backfill of old data (the floor of 2000 still holds).
    backfill = EventTimePolicy(max_age_s=0).around(NOW)
    assert isinstance(decode(TICKET, ticket(ts="2024-06-03T08:00:00+08:00"), bounds=backfill),
                      Event)
    assert isinstance(decode(TICKET, ticket(ts=0), bounds=backfill), DeadLetter)


def test_a_dead_letter_of_a_huge_record_keeps_a_prefix_its_size_and_hash():
    control = b"\x01\x02\x1f" * 320_000  # 960 KB of control bytes: 6 bytes each as JSON text
    dl = decode(TICKET, control, key=b"K" * 100_000, partition=1, offset=9)
    assert isinstance(dl, DeadLetter)
    assert (dl.truncated, dl.size, dl.sha256) == (True, len(control),
                                                  hashlib.sha256(control).hexdigest())
    assert len(dl.model_dump_json()) < 120_000
    assert fits(dl.source_topic.encode(), dl.model_dump_json().encode())
    assert len(dl.key or "") <= 1000


def test_a_long_reason_is_cut():
    dl = decode("x" * 100_000, b"{}")
    assert isinstance(dl, DeadLetter)
    assert len(dl.reason) <= 2000 and len(dl.source_topic) <= 512
