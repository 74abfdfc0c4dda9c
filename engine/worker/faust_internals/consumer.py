"""What the worker reads of, and sets in, the bookkeeping of Faust's consumer and the aiokafka
consumer it runs in a thread: the partition watch's positions, a stalled partition put back
among the fetched ones, the fetcher's pace."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def aiokafka_consumer(consumer: Any) -> Any | None:
    """The aiokafka consumer inside Faust's consumer thread (None: not started)."""
    return getattr(getattr(consumer, "_thread", None), "_consumer", None)


def partition_states(consumer: Any) -> Callable[[Any], Any] | None:
    """aiokafka's lookup of a partition's fetch state (position, highwater, paused), or None
    when the consumer is not started or is between assignments."""
    try:
        return consumer._thread._consumer._subscription.subscription.assignment.state_value
    except AttributeError:
        return None


def read_offsets(consumer: Any) -> Mapping[Any, int | None]:
    """Per partition, the offset Faust's fetch loop last handed on (or sought to)."""
    return consumer._read_offset


def committed_offsets(consumer: Any) -> Mapping[Any, int]:
    return consumer._committed_offset


def fetch_again(consumer: Any, tp: Any) -> None:
    """Put ``tp`` back among the partitions Faust fetches, in case its buffer flow control lost
    it (not one Faust paused itself: it pauses only while tables recover)."""
    if tp not in consumer._paused_partitions:
        consumer._buffered_partitions.discard(tp)
        if consumer._active_partitions is not None:
            consumer._active_partitions.add(tp)


def reading_state(consumer: Any, tp: Any, tp_state: Any) -> str:
    """What Faust's and aiokafka's bookkeeping say of a partition (for a stalled one)."""
    fetched = consumer._thread._consumer._fetcher._records.get(tp)
    return (f"aiokafka position {tp_state.position}, end {tp_state.highwater}, "
            f"paused {tp_state.paused}, "
            f"fetched not taken {type(fetched).__name__ if fetched else None}; "
            f"faust active {tp in (consumer._active_partitions or ())}, "
            f"paused {tp in consumer._paused_partitions}, "
            f"buffered {tp in consumer._buffered_partitions}, "
            f"read offset {consumer._read_offset.get(tp)}, "
            f"committed {consumer._committed_offset.get(tp)}, "
            f"flow active {consumer.flow_active}")
