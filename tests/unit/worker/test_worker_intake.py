"""The worker's intake without a broker: what reaches the scoring core, and what it skips.

The Faust app is built but never started; batches are handed to ``Worker.handle_intake`` the
way the intake agent hands them over, and alerts are caught where they would be published."""

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from engine import metrics
from engine.worker import Worker, WorkerSettings
from tests.rulekit import FACILITY, rule_text
from tests.unit.worker.kit import counting_worker, message

START = "2024-06-03T08:00:{:02d}+08:00"
START_TS = 1717372800.0  # 2024-06-03T00:00:00Z


def record(offset: int, second: int, partition: int = 0, tank_id: str = "T1") -> Any:
    """One item of a ``take_events`` batch: a facility event keyed by its tank."""
    return message(FACILITY, tank_id, {"event_id": f"e{offset}", "ts": START.format(second),
                                       "tank_id": tank_id, "facility_id": "F1"},
                   offset, partition)


@pytest.fixture
def worker(tmp_path):
    worker = counting_worker(tmp_path)
    published: list[Any] = []
    worker.publish = published.extend  # type: ignore[method-assign]
    worker.published = published  # type: ignore[attr-defined]
    return worker


def test_events_read_again_after_a_rebalance_are_counted_once(worker):
    # The state handed over can be ahead of the committed offsets (the events since the last
    # commit were scored and their state flushed): the next owner reads them again.
    worker.handle_intake([record(100, 0), record(101, 10)])
    assert worker.published == []
    worker.handle_intake([record(100, 0), record(101, 10), record(102, 20)])
    assert [(a.key, a.state, a.evidence["value"]) for a in worker.published] == [
        ("T1", "firing", 3)]
    assert worker.published[0].last_ts == START_TS + 20  # at the third event, not a repeat
    assert worker.core.repeated == 2


def test_marks_are_per_source_partition(worker):
    # The same offsets in another partition are other events (a key moved by a producer).
    worker.handle_intake([record(100, 0), record(101, 10)])
    worker.handle_intake([record(100, 20, partition=1)])
    assert [(a.key, a.state, a.evidence["value"]) for a in worker.published] == [
        ("T1", "firing", 3)]


async def test_a_partition_with_records_waiting_and_nothing_handed_on_is_read_again(
        worker, caplog):
    # Faust was seen taking a quiet partition's records from aiokafka and never handing them
    # on: no later message showed the gap, and the partition sat with its records uncommitted
    stuck, moving, changelog = (TP(FACILITY, 0), TP(FACILITY, 1),
                                TP("yujing-state-changelog", 0))
    consumer = worker.app.consumer
    sought = _started_consumer(worker, highwater=50)
    worker._assignment = frozenset((stuck, moving, changelog))
    for tp in (stuck, moving, changelog):
        consumer._read_offset[tp] = 10  # sought to the committed offset 10
    consumer._active_partitions = {moving}  # Faust left ``stuck`` out of its fetches
    stalled = lambda: metrics.sample_value("yujing_partitions_stalled")  # noqa: E731
    worker._watch_partitions(0.0)
    worker.fetch_order.admit(moving, 10, read=10)  # one of ``moving`` handed on
    worker._watch_partitions(10.0)
    await asyncio.sleep(0)  # the seek runs as a task
    # the table's changelog is Faust's to read (only while it recovers): not watched
    assert stalled() == 1
    assert [r.getMessage().split(" (")[0] for r in caplog.records if r.levelname == "ERROR"] == [
        f"{FACILITY}[0]: nothing handed on for 10 s from offset 10 with records waiting"]
    assert sought == [(stuck, 10)] and consumer._read_offset[stuck] == 10
    assert stuck in consumer._active_partitions
    worker.fetch_order.admit(stuck, 10, read=10)
    worker._watch_partitions(11.0)
    assert stalled() == 0
    assert f"{FACILITY}[0] is read again" in caplog.text


def _started_consumer(worker, highwater: int) -> list:
    """Faust's consumer as the watch reads it: aiokafka's state of every partition at
    ``highwater`` with its position there too (its fetches stopped); returns the seeks."""
    consumer = worker.app.consumer
    sought: list = []

    def state(tp):
        return SimpleNamespace(position=highwater, has_valid_position=True,
                               highwater=highwater, paused=False)

    consumer._thread._consumer = SimpleNamespace(
        _subscription=SimpleNamespace(subscription=SimpleNamespace(
            assignment=SimpleNamespace(state_value=state))),
        _fetcher=SimpleNamespace(_records={}))

    async def seek_wait(offsets):  # Faust's seek in its consumer thread
        sought.extend(offsets.items())
        consumer._read_offset.update(offsets)

    consumer.seek_wait = seek_wait
    return sought


async def test_records_waiting_are_measured_against_the_brokers_end_offsets(worker):
    # aiokafka's own end offset stops with its fetches: a consumer that stopped fetching
    # looks caught up by it
    tp = TP(FACILITY, 0)
    sought = _started_consumer(worker, highwater=10)
    consumer = worker.app.consumer
    consumer._read_offset[tp] = 10
    worker._assignment = frozenset([tp])

    async def highwaters(*partitions):
        return {p: 25 for p in partitions}

    async def earliest_offsets(*partitions):
        return {p: 0 for p in partitions}

    consumer.highwaters = highwaters
    consumer.earliest_offsets = earliest_offsets
    worker._watch_partitions(0.0)
    worker._watch_partitions(10.0)
    assert sought == []  # by aiokafka's figure nothing waits
    await worker.poll_end_offsets()
    assert worker._starts == {tp: 0} and worker._ends == {tp: 25}
    worker._watch_partitions(20.0)
    worker._watch_partitions(30.0)
    await asyncio.sleep(0)
    assert sought == [(tp, 10)]


async def test_a_consumer_that_does_not_answer_is_reported(worker, caplog, monkeypatch):
    import engine.worker.partition_keeping

    monkeypatch.setattr(engine.worker.partition_keeping, "END_OFFSETS_TIMEOUT_S", 0.01)
    worker._assignment = frozenset([TP(FACILITY, 0)])

    async def stuck(*partitions):
        await asyncio.sleep(10)

    worker.app.consumer.highwaters = stuck
    before = metrics.sample_value("yujing_consumer_unanswered_total") or 0.0
    await worker.poll_end_offsets()
    assert metrics.sample_value("yujing_consumer_unanswered_total") == before + 1
    assert "did not answer a request for end offsets" in caplog.text


async def test_a_commit_standing_still_behind_what_was_handed_on_is_read_again(worker, caplog):
    # Faust commits only up to the first offset it holds no acknowledgement for
    tp = TP(FACILITY, 0)
    sought = _started_consumer(worker, highwater=50)
    consumer = worker.app.consumer
    worker._assignment = frozenset([tp])
    consumer._read_offset[tp] = 40
    for offset in range(40, 50):  # all handed on: nothing waits to be fetched
        worker.fetch_order.admit(tp, offset, read=consumer._read_offset[tp])
        consumer._read_offset[tp] = offset
    consumer._committed_offset[tp] = 40
    worker._watch_partitions(0.0)
    worker._watch_partitions(29.0)
    await asyncio.sleep(0)
    assert sought == []
    worker._watch_partitions(30.0)
    await asyncio.sleep(0)
    assert sought == [(tp, 40)]
    assert "commit held at 40 for 30 s while offsets up to 50 were handed on" in caplog.text


async def test_a_partition_with_no_committed_offset_and_nothing_handed_on_is_read_again(worker):
    # A re-keying partition another worker had written to and no one had committed: sought
    # to no committed offset, its records sat unread, and with no position known the watch
    # did not see them waiting. It is read from the log's start.
    tp = TP("yujing-repartition", 2)
    sought = _started_consumer(worker, highwater=4)
    consumer = worker.app.consumer
    consumer._read_offset[tp] = None  # Faust's seek to no committed offset
    worker._assignment = frozenset([tp])
    worker._starts = {tp: 0}
    worker._watch_partitions(0.0)
    worker._watch_partitions(10.0)
    await asyncio.sleep(0)
    assert sought == [(tp, 0)]


def test_a_partition_not_yet_sought_is_not_read_again(worker):
    # Faust has not sought it since the assignment: its seek reads it (nothing to do yet).
    tp = TP("yujing-repartition", 2)
    sought = _started_consumer(worker, highwater=4)
    worker._assignment = frozenset([tp])
    worker._starts = {tp: 0}
    worker._watch_partitions(0.0)
    worker._watch_partitions(10.0)
    assert sought == []


def test_the_stream_buffer_is_fausts_and_larger_than_its_default(tmp_path):
    # Faust pauses a partition's fetches when its stream holds stream_buffer_maxsize events.
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hot.yaml").write_text(rule_text(id="test.tank.hot", source=FACILITY,
                                              kind="threshold", condition="temp_c > 60"))
    default = Worker(WorkerSettings(rules=[rules], data_dir=tmp_path / "a",
                                    reload_interval_s=0))
    assert default.app.conf.stream_buffer_maxsize == 65536
    small = Worker(WorkerSettings(rules=[rules], data_dir=tmp_path / "b", reload_interval_s=0,
                                  stream_buffer=4096, app_id="small"))
    assert small.app.conf.stream_buffer_maxsize == 4096
