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


async def test_the_consumer_fetch_waits_at_most_the_configured_time(tmp_path):
    # Faust creates its aiokafka consumer with fetch_max_wait_ms=1500 and no setting for it
    worker = Worker(WorkerSettings(rules=[tmp_path], data_dir=tmp_path / "data",
                                   reload_interval_s=0, fetch_max_wait_s=0.05))
    thread = worker.app.consumer._thread
    consumer = thread._create_worker_consumer(worker.app.transport)
    assert consumer._fetch_max_wait_ms == 50
