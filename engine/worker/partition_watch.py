"""Notices partitions the consumer has stopped reading while their records wait.

With two workers in a group, a partition was seen to be never fetched again after a rebalance:
the worker sat idle while that partition's lag stayed. Nothing in Faust or aiokafka reports it,
so the worker watches each partition's position (the next offset the consumer is to hand on)
against the broker's end offset, and reports a partition whose position has not moved for a
while although records wait; the worker then reads it again from that position.
``yujing_partitions_stalled`` counts them; the log line says what the consumer's bookkeeping
shows for it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """One partition's reading position and the broker's end offset (None: not known yet)."""

    position: int | None
    end: int | None

    @property
    def waiting(self) -> bool:
        """Records wait to be read."""
        return self.position is not None and self.end is not None and self.end > self.position


class PartitionWatch:
    """Partitions whose position stood still for ``after_s`` seconds while records waited;
    one that stays still is reported again every ``after_s``.

    >>> watch = PartitionWatch(after_s=10)
    >>> watch.observe(0, {"p0": Progress(position=10, end=50)})
    ([], [])
    >>> watch.observe(10, {"p0": Progress(position=10, end=50)})
    (['p0'], [])
    >>> watch.observe(11, {"p0": Progress(position=11, end=50)})
    ([], ['p0'])
    """

    def __init__(self, after_s: float = 10.0) -> None:
        self.after_s = after_s
        self._since: dict[Hashable, tuple[int | None, float]] = {}
        """Per partition: its position, and since when it has been there with records waiting
        (or since it was last reported)."""
        self.stalled: set[Hashable] = set()

    def observe(self, now: float, progress: Mapping[Hashable, Progress]
                ) -> tuple[list[Hashable], list[Hashable]]:
        """Take the partitions' progress now; return (stalled for another ``after_s``, reading
        again). A partition no longer in ``progress`` (revoked) is forgotten."""
        stalled, recovered = [], []
        since = {}
        for tp, seen in progress.items():
            before = self._since.get(tp)
            if not seen.waiting:
                continue  # caught up: nothing to read
            if before is None or before[0] != seen.position:
                since[tp] = (seen.position, now)
                if tp in self.stalled:
                    recovered.append(tp)
            elif now - before[1] >= self.after_s:
                stalled.append(tp)
                since[tp] = (seen.position, now)
            else:
                since[tp] = before
        recovered.extend(self.stalled - set(since))  # caught up, or revoked
        self._since = since
        self.stalled = (self.stalled | set(stalled)) - set(recovered)
        return stalled, recovered
