"""Re-keyed events: scored at once when this worker reads their re-keying partition, sent
through the re-keying topic otherwise (engine/worker/intake.py, ``WorkerSettings.rekey_here``).

The Faust app is built but never started; the assignment is given the way Faust's consumer
reports it, and what would be sent to the re-keying topic is caught."""

from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import murmur2
from faust.types import TP

from engine import metrics
from engine.worker import Worker, WorkerSettings
from tests.rulekit import FACILITY, rule_text
from tests.unit.worker.test_worker_intake import START_TS, record

REPARTITION = "yujing-repartition"
PARTITIONS = 4


def partition_of(key: str) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % PARTITIONS


def make_worker(tmp_path, **settings: Any) -> Worker:
    rules = tmp_path / "rules"
    rules.mkdir(parents=True)
    (rules / "alarms.yaml").write_text(rule_text(
        id="test.facility.readings", source=FACILITY, key="facility_id", kind="window",
        aggregate="count", size="10m", condition="value >= 2",
        summary="{count} readings at {facility_id}"), encoding="utf-8")
    worker = Worker(WorkerSettings(rules=[rules], max_event_age_s=0, data_dir=tmp_path / "data",
                                   reload_interval_s=0, partitions=PARTITIONS, **settings))
    published: list[Any] = []
    worker.publish = published.extend  # type: ignore[method-assign]
    worker.published = published  # type: ignore[attr-defined]
    forwarded: list[tuple[int, list[dict[str, Any]]]] = []

    def send_forward_record(partition: int, entries: list[bytes]) -> None:
        forwarded.append((partition, [orjson.loads(entry) for entry in entries]))

    worker._send_forward_record = send_forward_record  # type: ignore[method-assign]
    worker.forwarded = forwarded  # type: ignore[attr-defined]
    return worker


def assign(worker: Worker, partitions: set[int]) -> None:
    """Give ``worker`` these partitions of the facility topic and of the re-keying topic."""
    assignment = {TP(topic, p) for p in partitions for topic in (FACILITY, REPARTITION)}
    worker.app.consumer._thread._consumer = SimpleNamespace(assignment=lambda: assignment)
    worker.take_assignment()


def rekeyed_here() -> float:
    return metrics.sample_value("yujing_events_rekeyed_here_total") or 0.0


@pytest.fixture
def facility():
    """A facility whose re-keying partition is not 0 (so a worker can lack it)."""
    return next(f"F{i}" for i in range(100) if partition_of(f"F{i}") != 0)


def readings(facility: str) -> list[Any]:
    # Keyed by their tanks (the topic's key): the rule keyed by facility re-keys them.
    batch = [record(100, 0, tank_id="T1"), record(101, 10, tank_id="T2")]
    for item in batch:
        item.message.value = item.message.value.replace(b'"F1"', orjson.dumps(facility))
    return batch


def test_a_re_keyed_event_whose_partition_this_worker_reads_is_scored_at_once(
        tmp_path, facility):
    worker = make_worker(tmp_path)
    assign(worker, {0, 1, 2, 3})
    before = rekeyed_here()
    worker.handle_intake(readings(facility))
    assert worker.forwarded == []
    assert [(a.key, a.state, a.evidence["value"]) for a in worker.published] == [
        (facility, "firing", 2)]
    assert worker.published[0].last_ts == START_TS + 10
    assert rekeyed_here() - before == 2


def test_one_whose_partition_another_worker_reads_goes_through_the_topic(tmp_path, facility):
    worker = make_worker(tmp_path)
    assign(worker, {0})
    worker.handle_intake(readings(facility))
    assert worker.published == []
    assert [(partition, [(e["stream"], e["topic"], e["p"], e["o"]) for e in entries])
            for partition, entries in worker.forwarded] == [
        (partition_of(facility), [("by:facility_id", FACILITY, 0, 100),
                                  ("by:facility_id", FACILITY, 0, 101)])]


def test_all_go_through_the_topic_when_switched_off(tmp_path, facility):
    worker = make_worker(tmp_path, rekey_here=False)
    assign(worker, {0, 1, 2, 3})
    worker.handle_intake(readings(facility))
    assert worker.published == []
    assert [partition for partition, _ in worker.forwarded] == [partition_of(facility)]


def test_before_any_assignment_all_go_through_the_topic(tmp_path, facility):
    worker = make_worker(tmp_path)
    worker.handle_intake(readings(facility))
    assert worker.published == []
    assert len(worker.forwarded) == 1


def test_scored_here_or_read_back_from_the_topic_the_state_is_the_same(tmp_path, facility):
    # The same events, once scored here and once forwarded and read back (as the re-keyed
    # agent reads them): the same alerts, and a repeat of either is skipped by its origin.
    here = make_worker(tmp_path / "here")
    assign(here, {0, 1, 2, 3})
    here.handle_intake(readings(facility))
    via_topic = make_worker(tmp_path / "topic", rekey_here=False)
    assign(via_topic, {0, 1, 2, 3})
    via_topic.handle_intake(readings(facility))
    (partition, entries), = via_topic.forwarded
    back = SimpleNamespace(message=SimpleNamespace(
        topic=REPARTITION, key=b"%d" % partition, partition=partition, offset=0,
        value=orjson.dumps(entries)))
    via_topic.handle_rekeyed([back])
    assert ([(a.key, a.state, a.evidence["value"], a.last_ts) for a in here.published]
            == [(a.key, a.state, a.evidence["value"], a.last_ts) for a in via_topic.published])
    here.handle_intake(readings(facility))  # read again (a rebalance): skipped
    assert len(here.published) == 1 and here.core.repeated == 2


async def test_between_a_revocation_and_the_next_assignment_all_go_through_the_topic(
        tmp_path, facility):
    worker = make_worker(tmp_path)
    assign(worker, {0, 1, 2, 3})
    await worker.app.on_partitions_revoked.send(revoked=set())
    worker.handle_intake(readings(facility))
    assert worker.published == []
    assert [partition for partition, _ in worker.forwarded] == [partition_of(facility)]
