"""The worker's intake as plain functions, without a Faust app (engine/worker/intake.py):
what is scored here, what is re-keyed where, and what is dead-lettered."""

import time
from types import SimpleNamespace
from typing import Any

import orjson

from engine.kafka_client.partitions import partition_of
from engine.worker import intake
from engine.worker.intake import (
    batch_dead_letters,
    decode_rekeyed,
    forward_records,
    route_intake,
)
from tests.rulekit import FACILITY
from topics.codec import EventTimePolicy

PARTITIONS = 4
BOUNDS = EventTimePolicy(600.0, 0.0).around(time.time())


def item(offset: int, tank_id: str = "T1", facility_id: str = "F1", key: bytes | None = None,
         value: bytes | None = None) -> Any:
    if value is None:
        value = orjson.dumps({"event_id": f"e{offset}", "ts": "2024-06-03T08:00:00+08:00",
                              "tank_id": tank_id, "facility_id": facility_id})
    return SimpleNamespace(message=SimpleNamespace(
        topic=FACILITY, key=tank_id.encode() if key is None else key, value=value,
        partition=0, offset=offset))


def by_facility(event: Any) -> list[tuple[str, str]]:
    """A core with one stream keyed like the topic and one keyed by facility."""
    return [("by_tank", event.key), ("by_facility", event.data["facility_id"])]


def route(batch: list[Any], rekey_here: frozenset[int] = frozenset()) -> intake.IntakeRouting:
    return route_intake(batch, bounds=BOUNDS, partitions=PARTITIONS, rekey_here=rekey_here,
                        local_streams=frozenset({"by_tank"}), local_only=frozenset(),
                        stream_keys=by_facility)


def test_an_event_keyed_right_is_scored_here_and_re_keyed_for_the_other_stream():
    routed = route([item(7)])
    assert [e.key for e in routed.local] == ["T1"]
    assert routed.origins == [(FACILITY, 0, 7)]
    partition = partition_of(b"F1", PARTITIONS)
    [envelope] = routed.forwards[partition]
    assert orjson.loads(envelope) | {"value": None} == {
        "stream": "by_facility", "topic": FACILITY, "p": 0, "o": 7, "value": None}
    assert routed.consumed == {FACILITY: 1} and routed.dead_letters == []


def test_one_re_keyed_to_a_partition_read_here_is_scored_at_once():
    routed = route([item(7)], rekey_here=frozenset({partition_of(b"F1", PARTITIONS)}))
    assert routed.forwards == {}
    events, origins = routed.here["by_facility"]
    assert [e.key for e in events] == ["T1"] and origins == [(FACILITY, 0, 7)]


def test_one_keyed_otherwise_is_re_keyed_for_every_stream():
    routed = route([item(7, key=b"elsewhere")])
    assert routed.local == []
    assert sum(len(entries) for entries in routed.forwards.values()) == 2


def test_undecodable_and_unkeyable_events_are_dead_lettered():
    def failing(event: Any) -> list[tuple[str, str]]:
        raise ValueError("no facility")

    routed = route([item(1, value=b"not json")])
    assert [letter.offset for letter in routed.dead_letters] == [1]
    routed = route_intake([item(2)], bounds=BOUNDS, partitions=PARTITIONS,
                          rekey_here=frozenset(), local_streams=frozenset({"by_tank"}),
                          local_only=frozenset(), stream_keys=failing)
    [letter] = routed.dead_letters
    assert "could not be re-keyed" in letter.reason and letter.offset == 2


def test_forwards_are_split_into_records_that_fit(monkeypatch):
    monkeypatch.setattr(intake, "FORWARD_RECORD_BYTES", 25)
    entries = [b"x" * 10, b"y" * 10, b"z" * 10]
    assert forward_records(entries) == [[b"x" * 10, b"y" * 10], [b"z" * 10]]


def test_re_keyed_records_decode_per_stream_and_bad_envelopes_are_dead_lettered():
    envelope = intake.forward_envelope("by_facility", item(7).message,
                                       route([item(7)]).local[0])
    good = SimpleNamespace(message=SimpleNamespace(
        topic="yujing-repartition", key=b"1", value=b"[" + envelope + b"]", partition=1,
        offset=3))
    bad = SimpleNamespace(message=SimpleNamespace(
        topic="yujing-repartition", key=b"1", value=b"{}", partition=1, offset=4))
    by_stream, letters = decode_rekeyed([good, bad])
    events, origins = by_stream["by_facility"]
    assert [e.key for e in events] == ["T1"] and origins == [(FACILITY, 0, 7)]
    [letter] = letters
    assert letter.reason_class == "envelope"


def test_a_batch_that_could_not_be_scored_is_dead_lettered_record_by_record():
    letters = batch_dead_letters([item(1), item(2)], RuntimeError("boom"))
    assert [(letter.offset, letter.reason_class) for letter in letters] == [
        (1, "scoring"), (2, "scoring")]
    assert "its batch could not be scored" in letters[0].reason
