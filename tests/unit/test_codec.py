"""Decoding department payloads: good events typed, bad ones dead-lettered with a reason."""

import base64

from topics.codec import Event, decode
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
