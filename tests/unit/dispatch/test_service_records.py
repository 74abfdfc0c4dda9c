"""The service's decoding of Kafka records: a typed record, or a dead letter saying why."""

from aiokafka import ConsumerRecord

from engine.dispatch.service import decode_record
from tests.unit.dispatch.kit import alert
from topics.records import Alert, DeadLetter, Feedback
from topics.registry import ALERTS, FEEDBACK


def message(topic: str, value: bytes | None, key: bytes = b"k") -> ConsumerRecord:
    return ConsumerRecord(topic=topic, partition=2, offset=41, timestamp=0, timestamp_type=0,
                          key=key, value=value, checksum=None, serialized_key_size=1,
                          serialized_value_size=len(value or b""), headers=())


def test_a_valid_alert_decodes():
    record = alert()
    assert decode_record(ALERTS, Alert, message("alerts", record.model_dump_json().encode())) \
        == record


def test_bad_records_become_dead_letters_with_the_reason_and_where_they_were():
    letter = decode_record(ALERTS, Alert, message("alerts", b'{"alert_id": "x"'))
    assert isinstance(letter, DeadLetter)
    assert (letter.source_topic, letter.partition, letter.offset, letter.key) == (
        "alerts", 2, 41, "k")
    assert letter.reason == "not JSON: unexpected end of data: line 1 column 17 (char 16)"
    assert letter.value == '{"alert_id": "x"'

    wrong = decode_record(FEEDBACK, Feedback, message(
        "dispatch.feedback", b'{"order_id": "o1", "status": "done", "department": "x"}'))
    assert isinstance(wrong, DeadLetter)
    assert wrong.reason == (
        "does not match the dispatch.feedback schema: status: Input should be 'acknowledged', "
        "'on_scene', 'resolved' or 'false_alarm'; at: Field required")
    assert decode_record(ALERTS, Alert, message("alerts", b"[1]")).reason == (  # type: ignore
        "not a JSON object but list")
    assert decode_record(ALERTS, Alert, message("alerts", None)).reason == (  # type: ignore
        "no value (a tombstone)")
