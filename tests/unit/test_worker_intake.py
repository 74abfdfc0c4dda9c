"""The worker's intake without a broker: what reaches the scoring core, and what it skips.

The Faust app is built but never started; batches are handed to ``Worker.handle_intake`` the
way the intake agent hands them over, and alerts are caught where they would be published."""

from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from faust.types import TP
from prometheus_client import REGISTRY

from engine.worker import Worker, WorkerSettings
from tests.rulekit import FACILITY, rule_text
from topics.registry import EVENT_TOPICS

START = "2024-06-03T08:00:{:02d}+08:00"
START_TS = 1717372800.0  # 2024-06-03T00:00:00Z


def record(offset: int, second: int, partition: int = 0, tank_id: str = "T1") -> Any:
    """One item of a ``take_events`` batch: a facility event keyed by its tank."""
    value = orjson.dumps({"event_id": f"e{offset}", "ts": START.format(second),
                          "tank_id": tank_id, "facility_id": "F1"})
    return SimpleNamespace(message=SimpleNamespace(
        topic=FACILITY, key=tank_id.encode(), value=value, partition=partition, offset=offset,
        tp=TP(FACILITY, partition)))


@pytest.fixture
def worker(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "readings.yaml").write_text(rule_text(
        id="test.tank.readings", source=FACILITY, kind="window", aggregate="count",
        size="10m", condition="value >= 3"), encoding="utf-8")
    worker = Worker(WorkerSettings(rules=[rules], data_dir=tmp_path / "data",
                                   reload_interval_s=0))
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


def skipped(topic: str | None = FACILITY) -> float:
    """Events counted as skipped by the consumer so far (of ``topic``; None: of any)."""
    return sum(REGISTRY.get_sample_value("yujing_events_skipped_by_consumer_total",
                                         {"topic": t}) or 0.0
               for t in (EVENT_TOPICS if topic is None else [topic]))


def held() -> float | None:
    return REGISTRY.get_sample_value("yujing_partitions_held")


def test_offsets_the_consumer_jumped_over_are_counted_and_logged(worker, caplog):
    # outside a rebalance a gap cannot be read again (a transactional producer's markers
    # leave some too): it is counted and logged
    before = skipped()
    worker.handle_intake([record(100, 0), record(101, 10)])
    worker.handle_intake([record(100, 0), record(101, 10)])  # read again: not a skip
    worker.handle_intake([record(102, 15), record(106, 20), record(3, 25, partition=1)])
    assert skipped() == before + 3
    assert "the consumer skipped offsets 103-105 of events.hazchem.facility[0] (3 events" \
        in caplog.text


def test_messages_delivered_ahead_of_a_gap_while_revoking_are_held_and_read_again_in_order(
        worker, caplog):
    tp = TP(FACILITY, 0)
    before = skipped(None)
    worker.handle_intake([record(100, 0), record(101, 10)])
    worker.app.rebalancing = True
    # Faust hands over offset 105 while 102-104 were never delivered: not scored (and
    # not sought: the rebalance seeks to the committed offsets)
    worker.handle_intake([record(105, 50), record(106, 55)])
    assert worker.published == [] and worker.core.repeated == 0
    assert "held back" in caplog.text
    assert held() == 1
    # and no commit passes the first offset not delivered
    assert worker.offsets.limit({tp: 107, TP(FACILITY, 1): 9}) == {tp: 102, TP(FACILITY, 1): 9}
    # the rebalance completes; the seek to the committed offset reads them again, in order
    worker.offsets.reassigned([tp])
    worker.app.rebalancing = False
    worker.handle_intake([record(102, 20), record(103, 30)])
    assert [(a.state, a.last_ts) for a in worker.published] == [("firing", START_TS + 20)]
    assert worker.offsets.limit({tp: 104}) == {tp: 104}  # the re-read's own frontier
    assert worker.offsets.limit({tp: 107}) == {tp: 104}
    worker.handle_intake([record(104, 40), record(105, 50), record(106, 55)])
    assert worker.offsets.limit({tp: 107}) == {tp: 107}  # past what had come ahead: released
    assert held() == 0
    assert skipped(None) == before  # nothing was lost


def test_a_first_message_after_a_rebalance_ahead_of_the_committed_offset_is_read_again(
        worker, caplog):
    tp = TP(FACILITY, 0)
    before = skipped(None)
    sought = []
    worker.app.consumer._committed_offset[tp] = 100  # what Faust sought to
    worker.app.consumer.seek = lambda tp, offset: sought.append((tp, offset)) or _done()
    # records fetched before the seek: offsets 103 and 104 first
    worker.handle_intake([record(103, 30), record(104, 40)])
    assert sought == [(tp, 100)] and worker.published == []
    assert worker.offsets.limit({tp: 105}) == {tp: 100}
    worker.handle_intake([record(100, 0), record(101, 10), record(102, 20)])
    assert [(a.state, a.last_ts) for a in worker.published] == [("firing", START_TS + 20)]
    worker.handle_intake([record(103, 30), record(104, 40)])
    assert worker.offsets.limit({tp: 105}) == {tp: 105}
    assert sought == [(tp, 100)] and skipped(None) == before


async def _none() -> None:
    return None


def _done():
    return _none()


def test_a_gap_that_comes_again_after_the_seek_is_taken_as_it_is():
    """Records removed by retention, say: the partition is sought back once, not forever."""
    from engine.worker import OffsetGuard

    guard = OffsetGuard()
    sought = []

    def deliver(*offsets: int) -> list[int]:
        return [i.message.offset for i in guard.in_order(
            [record(o, 0) for o in offsets], False, lambda tp: 100,
            lambda tp, o: sought.append(o))]

    assert deliver(150) == [] and sought == [100]
    assert deliver(150, 151) == [150, 151] and sought == [100]


def test_a_kept_partition_delivering_past_its_own_frontier_before_the_seek_is_held():
    """After the assignment but before Faust seeks to the committed offsets, a partition this
    worker had and still has can only continue from where this worker left it."""
    from engine.worker import OffsetGuard

    guard = OffsetGuard()
    tp = TP(FACILITY, 0)
    sought = []

    def deliver(rebalancing: bool, committed: int | None, *offsets: int) -> list[int]:
        return [i.message.offset for i in guard.in_order(
            [record(o, 0) for o in offsets], rebalancing, lambda tp: committed,
            lambda tp, o: sought.append(o))]

    assert deliver(False, None, 100, 101) == [100, 101]
    guard.reassigned([tp])
    assert deliver(True, None, 4431, 4432) == [] and sought == [102]
    assert guard.limit({tp: 4433}) == {tp: 102}
    assert deliver(False, 95, 95, 96) == [95, 96]  # Faust's seek to the committed offset
    assert deliver(False, 95, *range(97, 4433)) == list(range(97, 4433))
    assert guard.limit({tp: 4433}) == {tp: 4433}


def test_a_department_partition_not_read_for_30_s_with_records_waiting_is_reported(
        worker, caplog):
    stuck, moving, changelog = (TP(FACILITY, 0), TP(FACILITY, 1),
                                TP("yujing-state-changelog", 0))
    positions = {stuck: 10, moving: 10, changelog: 0}

    def state(tp):
        return SimpleNamespace(position=positions[tp], has_valid_position=True, highwater=50,
                               paused=False)

    worker.app.consumer._thread._consumer = SimpleNamespace(
        _subscription=SimpleNamespace(subscription=SimpleNamespace(
            assignment=SimpleNamespace(state_value=state))),
        _fetcher=SimpleNamespace(_records={}))
    worker._assignment = frozenset(positions)
    stalled = lambda: REGISTRY.get_sample_value("yujing_partitions_stalled")  # noqa: E731
    worker._watch_partitions(0.0)
    positions[moving] = 20
    worker._watch_partitions(31.0)
    # the table's changelog is Faust's to read (only while it recovers): not watched
    assert stalled() == 1
    assert [r.getMessage().split(":")[0] for r in caplog.records if r.levelname == "ERROR"] == [
        f"{FACILITY}[0] has not been read for 30 s with records waiting"]
    positions[stuck] = 11
    worker._watch_partitions(32.0)
    assert stalled() == 0
    assert f"{FACILITY}[0] is read again" in caplog.text
