"""Deadlines wait for the backlog (engine/worker/backlog.py): after partitions are given, the
time deadlines are judged at follows the event time read until each partition is read up to
the end offset it had; then the wall clock. First the clock alone, then in a worker that is
built but never started, against replay of the same events."""

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from faust.types import TP

from engine import metrics
from engine.decision import alert_id_for
from engine.offline.replay import replay
from engine.worker import Worker, WorkerSettings
from engine.worker.backlog import BacklogClock, CaughtUp
from tests.rulekit import VEHICLE, rule_text

A, B = ("t", 0), ("t", 1)
WALL = 10_000.0


def given(ends: dict[Any, int], starts: dict[Any, int], stalled_after_s: float = 30.0
          ) -> tuple[BacklogClock, CaughtUp | None]:
    clock = BacklogClock(stalled_after_s)
    clock.assigned(list(ends), now=0.0)
    return clock, clock.ends_known(clock.generation, ends, starts, now=0.0)


def test_deadlines_wait_until_the_ends_of_the_partitions_given_are_known():
    clock = BacklogClock()
    assert clock.at(WALL) == WALL  # nothing given yet: the wall clock
    clock.assigned([A], now=0.0)
    assert clock.catching_up and clock.wants_ends
    clock.read({A: 5}, {A: 900.0}, records=5, now=1.0)
    assert clock.at(WALL) is None  # read, but how far there is to go is not known yet
    assert clock.ends_known(clock.generation, {A: 10}, {A: 0}, now=1.0) is None
    assert clock.at(WALL) == 900.0


def test_the_clock_is_the_event_time_of_the_partition_furthest_behind():
    clock, _ = given({A: 100, B: 100}, {A: 0, B: 0})
    clock.read({A: 50}, {A: 2000.0}, records=50, now=1.0)
    assert clock.at(WALL) is None  # B has had nothing read: its next reading may be old
    clock.read({B: 10}, {B: 1500.0}, records=10, now=1.0)
    assert clock.at(WALL) == 1500.0
    clock.read({B: 100}, {B: 1600.0}, records=90, now=2.0)
    assert clock.at(WALL) == 2000.0  # B is read to its end: only A holds it back
    assert clock.at(wall=1800.0) == 1800.0  # never ahead of the wall clock
    assert clock.read({A: 100}, {A: 2100.0}, records=50, now=3.0) == CaughtUp(200, 3.0)
    assert not clock.catching_up and clock.at(WALL) == WALL


def test_partitions_read_from_their_end_are_caught_up_at_once():
    # Committed at the end (or empty): nothing to read, nothing to wait for.
    clock, caught_up = given({A: 40, B: 0}, {A: 40, B: 0})
    assert caught_up == CaughtUp(0, 0.0)
    assert clock.at(WALL) == WALL


def test_records_produced_after_the_ends_were_asked_are_not_waited_for():
    clock, _ = given({A: 10}, {A: 0})
    clock.read({A: 10}, {A: 900.0}, records=10, now=1.0)
    assert not clock.catching_up  # live records past offset 10 go on arriving: read live


def test_ends_asked_for_an_earlier_assignment_are_not_taken():
    clock = BacklogClock()
    clock.assigned([A], now=0.0)
    earlier = clock.generation
    clock.assigned([A, B], now=1.0)  # a rebalance while the ends were asked
    assert clock.ends_known(earlier, {A: 0}, {A: 0}, now=1.0) is None
    assert clock.wants_ends
    assert clock.ends_known(clock.generation, {A: 0, B: 5}, {A: 0, B: 0}, now=1.0) is None
    assert clock.catching_up  # B's five records are still to read


def test_a_partition_whose_reading_stands_still_is_let_go():
    # Say a transactional producer's commit marker is its last offset: no record reaches it.
    clock, _ = given({A: 10, B: 10}, {A: 0, B: 0}, stalled_after_s=30.0)
    clock.read({A: 9, B: 10}, {A: 900.0, B: 950.0}, records=19, now=5.0)
    assert clock.settle(now=34.0) is None and clock.at(WALL) == 900.0
    assert clock.settle(now=35.0) == CaughtUp(19, 35.0, let_go=(A,))
    assert clock.at(WALL) == WALL


def test_nothing_given_is_nothing_to_catch_up():
    clock = BacklogClock()
    clock.assigned([], now=0.0)
    assert not clock.catching_up and clock.at(WALL) == WALL


T0 = 1717372800.0  # 2024-06-03T00:00:00Z, long past: the wall clock is far ahead
RULE = "test.vehicle.silent"


def reading(offset: int, ts: float, vehicle: str = "V1", ignition: bool = True) -> Any:
    """One item of a ``take_events`` batch: a vehicle position in partition 0."""
    value = orjson.dumps({"event_id": f"e{offset}", "ts": ts, "vehicle_id": vehicle,
                          "plate": vehicle, "lat": 30.0, "lon": 120.0, "speed_kmh": 40.0,
                          "ignition": ignition})
    return SimpleNamespace(message=SimpleNamespace(
        topic=VEHICLE, key=vehicle.encode(), value=value, partition=0, offset=offset,
        tp=TP(VEHICLE, 0)))


@pytest.fixture
def worker(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "silent.yaml").write_text(rule_text(
        id=RULE, source=VEHICLE, kind="absence", timeout="10m", arm_when="ignition == true"),
        encoding="utf-8")
    worker = Worker(WorkerSettings(rules=[rules], max_event_age_s=0, data_dir=tmp_path / "data",
                                   reload_interval_s=0, partitions=1))
    published: list[Any] = []
    worker.publish = published.extend  # type: ignore[method-assign]
    worker.published = published  # type: ignore[attr-defined]
    return worker


def catching_up() -> float | None:
    return metrics.sample_value("yujing_catching_up")


def test_a_restarted_worker_judges_silence_in_the_event_time_of_its_backlog(worker,
                                                                          monkeypatch):
    before_stop = reading(100, T0)
    backlog = [  # produced while no worker ran
        [reading(101, T0 + 300)],
        [reading(102, T0 + 1000, vehicle="V2", ignition=False)],  # another vehicle, unarmed
        [reading(103, T0 + 1100)],  # V1 was silent from T0+300 to T0+1100
    ]
    worker.handle_intake([before_stop])
    # The table recovered at the start would hold it (no broker here: the cache stands in).
    monkeypatch.setattr(worker.store, "discard", lambda: None)

    # started again: given the partition, sought to its committed offset 101, end 104
    assignment = {TP(VEHICLE, 0)}
    worker.app.consumer._thread._consumer = SimpleNamespace(assignment=lambda: assignment)
    worker.take_assignment()
    assert catching_up() == 1.0
    worker.backlog.ends_known(worker.backlog.generation, {(VEHICLE, 0): 104},
                              {(VEHICLE, 0): 101}, now=time.monotonic())
    # V1's deadline (T0+600) passed an hour ago by the wall clock, and its next reading waits
    # in the backlog: the tick fires nothing
    worker.handle_tick(T0 + 3600)
    assert worker.published == []

    for batch in backlog:
        worker.handle_intake(batch)
    assert not worker.backlog.catching_up and catching_up() == 0.0
    # what replay makes of the same events, up to the last one
    lines = [orjson.dumps({"topic": VEHICLE, "key": item.message.key.decode(),
                           "value": orjson.loads(item.message.value)})
             for item in [before_stop, *(batch[0] for batch in backlog)]]
    replayed = replay(lines, list(worker.core.rules.values()), now=T0 + 3600)
    silent_v1 = alert_id_for(RULE, "V1", T0 + 900)
    assert [(a.alert_id, a.state) for a in replayed.alerts] == [
        (silent_v1, "firing"), (silent_v1, "resolved")]
    assert [(a.alert_id, a.state) for a in worker.published] == [
        (a.alert_id, a.state) for a in replayed.alerts]

    # caught up: the wall clock again, and V1 has been silent since T0+1100
    worker.handle_tick(T0 + 3600)
    assert [(a.alert_id, a.state) for a in worker.published[2:]] == [
        (alert_id_for(RULE, "V1", T0 + 1700), "firing")]


def test_the_worker_asks_how_far_the_backlog_of_its_partitions_goes(worker, monkeypatch):
    given_partitions = {TP(VEHICLE, 0), TP(VEHICLE, 1)}
    worker.app.consumer._thread._consumer = SimpleNamespace(assignment=lambda: given_partitions)
    worker.take_assignment()

    async def highwaters(*partitions: TP) -> dict[TP, int]:
        return {TP(VEHICLE, 0): 40, TP(VEHICLE, 1): 7}

    async def earliest_offsets(*partitions: TP) -> dict[TP, int]:
        return {TP(VEHICLE, 0): 0, TP(VEHICLE, 1): 2}

    monkeypatch.setattr(worker.app.consumer, "highwaters", highwaters)
    monkeypatch.setattr(worker.app.consumer, "earliest_offsets", earliest_offsets)
    # partition 0 committed at its end; partition 1 never committed: read from its first offset
    worker.app.consumer._committed_offset.update({TP(VEHICLE, 0): 40, TP(VEHICLE, 1): -1})
    asyncio.run(worker.measure_backlog())
    assert not worker.backlog.wants_ends and worker.backlog.catching_up
    assert worker.backlog.at(T0) is None  # partition 1 is behind with nothing read
    worker.handle_intake([reading(6, T0 - 60)])  # partition 0's offset 6: already counted
    assert worker.backlog.catching_up
    item = reading(6, T0 - 60)
    item.message.partition, item.message.tp = 1, TP(VEHICLE, 1)
    worker.handle_intake([item])
    assert not worker.backlog.catching_up and catching_up() == 0.0
