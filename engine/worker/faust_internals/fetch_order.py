"""Each partition's messages in offset order, checked where Faust's consumer fetches them.

With two workers in a group, Faust 0.15 was seen handing on a partition's message thousands
of offsets ahead of the last one it had handed on, around rebalances, and then committing past
the gap (its consumer counts a gap in the offsets it reads as acknowledged): the events in
between were never scored. Catching that in the agents came too late: by then Faust's fetch
loop had recorded the ahead offset as read, and it drops whatever a seek back reads again up to
there, so a partition sought back from an agent could wait forever for the offsets it missed.

So the check sits in the fetch loop itself: ``guard_fetches`` wraps the consumer's
``getmany``, which that loop reads message by message, updating its read offset after each.
A message ahead of where its partition should go on is not handed on; the partition is sought
back there at once (the rest of its fetched messages are dropped too), and read again in order.
Faust never sees the gap, so it neither acknowledges nor commits past it. A gap that comes
again right after the seek is real (records removed by retention, or aborted by a
transactional producer): it is taken as it is, counted in
``yujing_events_skipped_by_consumer_total`` and logged. A single offset missing while a
partition reads on is a transactional producer's commit marker, not an event: no seek.

Faust was also seen handing on a partition it had just been given before seeking it to the
group's committed offset: those events came ahead of the ones read after the seek, and their
origin marks made the entities skip the earlier ones as already applied. Until the consumer
has sought a new partition, its messages are not handed on (the seek reads them again).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Hashable, Iterable
from typing import Any

from engine import metrics

log = logging.getLogger("yujing.worker")


NOT_YET = -1
"""``FetchOrder.admit``: do not hand the message on, and do not seek (the consumer's seek to the
committed offset, still to come, reads it again)."""


class FetchOrder:
    """Decides, message by message, whether a partition's fetch goes on in order.

    ``read`` is the consumer's read offset for the partition: the offset it was sought to
    (after an assignment or a seek: the next to read), or the last one it handed on.

    >>> order = FetchOrder()
    >>> order.admit("p0", 100, read=100)  # the first after a seek to the committed offset 100
    >>> order.admit("p0", 101, read=100)
    >>> order.admit("p0", 4431, read=101)  # ahead: seek back to 102
    102
    >>> order.admit("p0", 102, read=102)  # read again from there
    """

    def __init__(self) -> None:
        self._next: dict[Hashable, int] = {}
        """Per partition: the offset after the last one handed on (kept across a rebalance
        for the partitions this worker keeps)."""
        self._sought: dict[Hashable, int] = {}
        """Per partition: where it was last sought back to (once per place: a gap that comes
        again right after is real)."""

    def admit(self, tp: Hashable, offset: int, read: int | None,
              sought: bool = True) -> int | None:
        """None: hand the message on. ``NOT_YET``: not yet (``sought`` is False: the consumer
        has not sought the partition since it was assigned, and this worker did not read it
        before; the seek reads it again). Otherwise the offset to seek ``tp`` back to (this
        message and the rest of its partition's fetch are not handed on)."""
        if not sought and tp not in self._next:
            return NOT_YET
        expected = self.next_offset(tp, read)
        # A transactional producer's commit marker takes one offset (while reading on).
        marker = 1 if read is not None and expected == read + 1 else 0
        if expected is not None and offset > expected + marker:
            if self._sought.get(tp) != expected:
                self._sought[tp] = expected
                return expected
            self._skipped(tp, expected, offset)
        self._next[tp] = offset + 1
        return None

    def next_offset(self, tp: Hashable, read: int | None) -> int | None:
        """The offset of ``tp`` to hand on next (None: unknown, nothing handed on since the
        assignment and no seek yet)."""
        after = self._next.get(tp)
        if read is None:
            return after  # between a revocation and the seek: this worker's own frontier
        if after is not None and read == after - 1:
            return after  # reading on
        return read  # sought: back (an earlier commit), or on (someone read on)

    @staticmethod
    def _skipped(tp: Any, expected: int, offset: int) -> None:
        metrics.EVENTS_SKIPPED_BY_CONSUMER.labels(tp.topic).inc(offset - expected)
        log.warning("%s[%d]: offsets %d-%d are not in the log any more (retention, or an "
                    "aborted transaction): %d events not scored", tp.topic, tp.partition,
                    expected, offset - 1, offset - expected)

    def reassigned(self, assignment: Iterable[Hashable]) -> None:
        """Partitions were assigned: forget the frontier of those given away (another worker
        reads on from them), keep it for those kept."""
        assigned = set(assignment)
        self._next = {tp: after for tp, after in self._next.items() if tp in assigned}
        self._sought.clear()


def guard_fetches(consumer: Any, order: FetchOrder, topics: Collection[str],
                  seek: Callable[[Any, int], Awaitable[None]] | None = None) -> None:
    """Wrap ``consumer.getmany`` (Faust's fetch loop binds it when it starts: call this before
    the app starts) so that the messages of ``topics`` come in order (``FetchOrder``). Other
    topics (a table's compacted changelog, full of gaps) pass as they are. ``seek(tp,
    offset)`` defaults to ``seek_in_consumer_thread``; the fetch loop waits for it."""
    getmany = consumer.getmany
    if seek is None:
        def seek(tp: Any, offset: int) -> Awaitable[None]:
            return seek_in_consumer_thread(consumer, tp, offset)

    async def in_order(timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        rewound: set[Any] = set()
        async for tp, message in getmany(timeout=timeout):
            if tp.topic not in topics:
                yield tp, message
                continue
            if tp in rewound:
                continue  # fetched before the seek back
            # Faust's fetch loop updates its read offset after each message it hands on,
            # before it asks this generator for the next one: current here. A partition
            # has one once the consumer has sought it after the assignment (None: to no
            # committed offset); revoking it removes it.
            read_offsets = consumer._read_offset
            back_to = order.admit(tp, message.offset, read_offsets.get(tp),
                                  sought=tp in read_offsets)
            if back_to is None:
                yield tp, message
                continue
            if back_to == NOT_YET:
                continue
            rewound.add(tp)
            log.warning("%s[%d]: the consumer fetched offset %d while offsets from %d were "
                        "not handed on: read again from there", tp.topic, tp.partition,
                        message.offset, back_to)
            metrics.CONSUMER_REWINDS.labels(tp.topic).inc()
            await seek(tp, back_to)

    consumer.getmany = in_order


async def seek_in_consumer_thread(consumer: Any, tp: Any, offset: int) -> None:
    """Seek ``tp`` of Faust's aiokafka consumer, in the thread that consumer runs in.

    Faust runs aiokafka in a thread of its own, with its own event loop. Its ``Consumer.seek``
    calls aiokafka from the caller's thread, and aiokafka's wake-up of its fetcher is not
    thread-safe; ``seek_wait`` runs the seek in the consumer's thread."""
    await consumer.seek_wait({tp: offset})
    # As Faust's own seek does: read on from there (its loop drops what is below). Its
    # ``seek_wait`` forgets the read offset of a seek to 0 instead.
    consumer._read_offset[tp] = offset
