"""The watch over partitions the consumer stops reading (engine/worker/partition_watch.py)."""

from engine.worker.partition_watch import PartitionWatch, Progress


def test_a_partition_standing_still_with_records_waiting_is_reported_every_period():
    watch = PartitionWatch(after_s=30)
    assert watch.observe(0, {"a": Progress(5, 9)}) == ([], [])
    assert watch.observe(29, {"a": Progress(5, 9)}) == ([], [])
    assert watch.observe(30, {"a": Progress(5, 9)}) == (["a"], [])
    assert watch.observe(45, {"a": Progress(5, 12)}) == ([], [])
    assert watch.stalled == {"a"}
    assert watch.observe(60, {"a": Progress(5, 12)}) == (["a"], [])  # still: said again


def test_a_caught_up_or_moving_partition_is_not_stalled():
    watch = PartitionWatch(after_s=30)
    for second in range(0, 100, 10):
        # caught up (nothing waits), moving, and not yet positioned after an assignment
        assert watch.observe(second, {"idle": Progress(7, 7), "busy": Progress(second, 500),
                                      "new": Progress(None, 40)}) == ([], [])
    assert watch.stalled == set()


def test_the_clock_restarts_when_the_partition_moves():
    watch = PartitionWatch(after_s=30)
    watch.observe(0, {"a": Progress(5, 9)})
    watch.observe(20, {"a": Progress(6, 9)})
    assert watch.observe(45, {"a": Progress(6, 9)}) == ([], [])
    assert watch.observe(50, {"a": Progress(6, 9)}) == (["a"], [])


def test_a_stalled_partition_recovers_when_read_caught_up_or_revoked():
    watch = PartitionWatch(after_s=10)
    watch.observe(0, {"a": Progress(1, 9), "b": Progress(1, 9), "c": Progress(1, 9)})
    assert watch.observe(10, {"a": Progress(1, 9), "b": Progress(1, 9), "c": Progress(1, 9)}
                         ) == (["a", "b", "c"], [])
    stalled, recovered = watch.observe(11, {"a": Progress(2, 9), "b": Progress(9, 9)})
    assert stalled == [] and sorted(recovered) == ["a", "b", "c"]
    assert watch.stalled == set()
