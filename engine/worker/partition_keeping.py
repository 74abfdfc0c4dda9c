"""Keeping every partition a worker reads moving: what Faust's consumer has been seen to lose.

With two workers, partitions (nearly always of the re-keying topic) were seen to stop for 10 s
and more around rebalances — aiokafka holding fetched records that Faust did not take — and a
commit to stand still behind what had been handed on. ``PartitionKeeping`` asks the broker for
the partitions' end offsets, judges with ``PartitionWatch`` whether each moves, and reads a
stalled one again from where it stands. It is part of ``engine.worker.Worker``, whose consumer
(``app``), assignment, ``fetch_order`` and watches it uses; what it reads of the consumers'
bookkeeping goes through ``faust_internals.consumer``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka.errors import KafkaError

from engine import metrics
from engine.worker.backlog import BacklogClock, CaughtUp
from engine.worker.faust_internals.consumer import (
    committed_offsets,
    fetch_again,
    partition_states,
    read_offsets,
    reading_state,
)
from engine.worker.faust_internals.fetch_order import seek_in_consumer_thread
from engine.worker.partition_watch import Progress

log = logging.getLogger("yujing.worker")

END_OFFSETS_TIMEOUT_S = 5.0


class PartitionKeeping:
    """The worker's partition and commit watches (a part of ``Worker``)."""

    app: Any
    table: Any
    fetch_order: Any
    watch: Any
    commit_watch: Any
    _assignment: frozenset[Any] | None
    _read_topics: frozenset[str]
    _ends: dict[Any, int]
    _starts: dict[Any, int]
    _seeks: set[Any]
    backlog: BacklogClock
    _backlog_unanswered = -1
    """The assignment for which the broker was last found not answering (said once)."""
    report_caught_up: Callable[[CaughtUp | None], None]

    async def measure_backlog(self) -> None:
        """Once partitions were given (and sought to their committed offsets), ask the broker
        for their end offsets: the backlog the deadlines wait for (``BacklogClock``). Asked
        again a tick later while the broker does not answer (said once an assignment)."""
        if not self.backlog.wants_ends or self.app.rebalancing or self.app.in_recovery:
            return
        generation = self.backlog.generation
        partitions = [tp for tp in self._assignment or () if tp.topic in self._read_topics]
        consumer = self.app.consumer
        try:
            ends, firsts = await asyncio.wait_for(asyncio.gather(
                consumer.highwaters(*partitions), consumer.earliest_offsets(*partitions)),
                END_OFFSETS_TIMEOUT_S)
        except (TimeoutError, KafkaError) as exc:
            if self._backlog_unanswered != generation:
                self._backlog_unanswered = generation
                log.warning("the end offsets of the partitions given are not known yet (%r): "
                            "deadlines wait", exc)
            return
        committed = committed_offsets(consumer)
        starts = {}
        for tp in partitions:
            offset = committed.get(tp)
            start = offset if offset is not None and offset >= 0 else firsts.get(tp)
            if start is not None:
                starts[(tp.topic, tp.partition)] = start
        self.report_caught_up(self.backlog.ends_known(
            generation, {(tp.topic, tp.partition): end for tp, end in ends.items()
                         if end is not None}, starts, time.monotonic()))

    async def poll_end_offsets(self) -> None:
        """Ask the broker, through Faust's consumer, for the end offsets of the partitions this
        worker reads. A consumer that does not answer is reported: its thread is stuck, and no
        partition is being read."""
        if self.app.rebalancing or self.app.in_recovery:
            return
        partitions = [tp for tp in self._assignment or () if tp.topic in self._read_topics]
        if not partitions:
            return
        try:
            ends = await asyncio.wait_for(self.app.consumer.highwaters(*partitions),
                                          END_OFFSETS_TIMEOUT_S)
            starts = await asyncio.wait_for(self.app.consumer.earliest_offsets(*partitions),
                                            END_OFFSETS_TIMEOUT_S)
        except TimeoutError:
            metrics.CONSUMER_UNANSWERED.inc()
            log.error("Faust's consumer did not answer a request for end offsets within %.0f s: "
                      "its thread may be stuck, and then no partition is read",
                      END_OFFSETS_TIMEOUT_S)
            return
        except KafkaError as exc:
            log.warning("end offsets not read: %r", exc)
            return
        self._ends = {tp: end for tp, end in ends.items() if end is not None}
        self._starts = {tp: start for tp, start in starts.items() if start is not None}

    def _watch_partitions(self, now: float) -> None:
        """Read again a partition whose records wait while nothing of it has been handed on
        for a while (``PartitionWatch``): Faust's consumer was seen to leave partitions unread
        around rebalances, and to take a quiet partition's last records without handing them
        on (no later message showed the gap)."""
        consumer = self.app.consumer
        state = partition_states(consumer)
        if state is None:
            return  # not started, or between assignments
        progress = {}
        read = self._read_topics
        read_offset = read_offsets(consumer)
        for tp in self._assignment or ():
            if tp.topic not in read:
                continue  # the state table's changelog: Faust reads it only to recover
            tp_state = state(tp)
            if tp_state is not None:
                end = max(tp_state.highwater or 0, self._ends.get(tp, 0))
                position = self.fetch_order.next_offset(tp, read_offset.get(tp))
                if position is None and tp in read_offset:
                    # Sought to no committed offset and nothing handed on since: read from
                    # the log's start. Seen with re-keying partitions another worker had
                    # written to and no one had committed: their records sat unread.
                    position = self._starts.get(tp)
                progress[tp] = Progress(position, end or None)
        self._report_lag(progress)
        stalled, recovered = self.watch.observe(now, progress)
        for tp in stalled:
            offset = progress[tp].position
            assert offset is not None  # records wait past it
            log.error("%s[%d]: nothing handed on for %.0f s from offset %s with records "
                      "waiting (%s): read again from there", tp.topic, tp.partition,
                      self.watch.after_s, offset, reading_state(consumer, tp, state(tp)))
            self._read_again(tp, offset)
        for tp in recovered:
            log.warning("%s[%d] is read again", tp.topic, tp.partition)
        metrics.PARTITIONS_STALLED.set(len(self.watch.stalled))
        self._watch_commits(now, progress)

    def _report_lag(self, progress: dict[Any, Progress]) -> None:
        """Records waiting and partitions assigned, per topic read (0 for a topic with none)."""
        lag = dict.fromkeys(self._read_topics, 0)
        assigned = dict.fromkeys(self._read_topics, 0)
        for tp in self._assignment or ():
            if tp.topic in assigned:
                assigned[tp.topic] += 1
        for tp, seen in progress.items():
            if seen.position is not None and seen.end is not None:
                lag[tp.topic] += max(0, seen.end - seen.position)
        for topic in self._read_topics:
            metrics.CONSUMER_LAG_RECORDS.labels(topic).set(lag[topic])
            metrics.PARTITIONS_ASSIGNED.labels(topic).set(assigned[topic])
        metrics.STATE_KEYS.set(len(self.table))

    def _watch_commits(self, now: float, progress: dict[Any, Progress]) -> None:
        """Read again from the committed offset a partition whose commit stands still behind
        what was handed on (Faust commits only up to the first offset it has no acknowledgement
        for, and was seen holding one back for good)."""
        committed = committed_offsets(self.app.consumer)
        behind = {tp: Progress(committed.get(tp), seen.position)
                  for tp, seen in progress.items()}
        stalled, _ = self.commit_watch.observe(now, behind)
        for tp in stalled:
            offset = behind[tp].position
            assert offset is not None
            log.error("%s[%d]: commit held at %d for %.0f s while offsets up to %s were handed "
                      "on: read again from there", tp.topic, tp.partition, offset,
                      self.commit_watch.after_s, behind[tp].end)
            self._read_again(tp, offset)

    def _read_again(self, tp: Any, offset: int) -> None:
        metrics.CONSUMER_REWINDS.labels(tp.topic).inc()
        consumer = self.app.consumer
        seek = asyncio.ensure_future(seek_in_consumer_thread(consumer, tp, offset))
        self._seeks.add(seek)  # referenced until done
        seek.add_done_callback(self._sought)
        fetch_again(consumer, tp)

    def _sought(self, seek: Any) -> None:
        self._seeks.discard(seek)
        if not seek.cancelled() and seek.exception() is not None:
            log.error("could not seek a partition to read it again: %r", seek.exception())
