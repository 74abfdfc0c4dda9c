"""The clock a worker's deadlines follow: event time while it reads the backlog it was given, the
wall clock after.

After a start or a rebalance, the partitions a worker is given hold what was produced while no
one read them. A deadline fired by the wall clock before that backlog is read judges a key
silent whose next reading waits in it: an absence alert ``yujing replay`` of the same events
never gives. So until every partition it reads has been read up to the end offset it had when
it was given (asked of the broker just after), deadlines follow event time as replay does: the
newest event time read from the partition furthest behind (a partition's events come in offset
order, partitions among themselves in no order). A partition still behind with nothing read
yet holds the clock where it is. Once caught up, the wall clock again.

The clock is only as good as the order of event times within a partition: records produced
after newer ones (a department re-sending an old day) find it already past their deadlines, as
``yujing replay`` of the same records in the same order does, and as the wall clock does for
late events read live.

A partition whose reading stands still for ``stalled_after_s`` while still short of its end
(the consumer stuck, or a transactional producer's marker as its last offset, which no record
carries) is let go rather than hold every deadline for good.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping
from dataclasses import dataclass

STALLED_AFTER_S = 30.0


@dataclass(frozen=True)
class CaughtUp:
    """The backlog of an assignment was read: how many records it took, and how long."""

    records: int
    seconds: float
    let_go: tuple[Hashable, ...] = ()
    """Partitions let go short of their end (their reading stood still)."""


class BacklogClock:
    """Whether the partitions given are still being read up to their ends, and the time
    deadlines are judged at meanwhile. Partitions are whatever hashable the caller names them
    by (the worker: ``(topic, partition)``); times are epoch seconds (event time, wall clock)
    and ``now`` a monotonic clock.

    >>> clock = BacklogClock()
    >>> clock.assigned([("t", 0), ("t", 1)], now=0.0)
    >>> clock.at(wall=1000.0) is None  # the ends are not known yet: deadlines wait
    True
    >>> clock.ends_known(clock.generation, ends={("t", 0): 10, ("t", 1): 5},
    ...                  starts={("t", 0): 4, ("t", 1): 5}, now=0.5) is None  # ("t", 0) behind
    True
    >>> clock.read({("t", 0): 8}, {("t", 0): 900.0}, records=4, now=1.0) is None
    True
    >>> clock.at(wall=1000.0)  # event time, as far as the partition behind was read
    900.0
    >>> clock.read({("t", 0): 10}, {("t", 0): 950.0}, records=2, now=2.0)
    CaughtUp(records=6, seconds=2.0, let_go=())
    >>> clock.at(wall=1000.0)
    1000.0
    """

    def __init__(self, stalled_after_s: float = STALLED_AFTER_S) -> None:
        self.stalled_after_s = stalled_after_s
        self.generation = 0
        """Counts assignments: ends asked for an earlier one are not taken."""
        self.catching_up = False
        self._partitions: frozenset[Hashable] = frozenset()
        self._ends: dict[Hashable, int] | None = None
        """Per partition: the end offset to read up to (None: not known yet)."""
        self._next: dict[Hashable, int] = {}
        """Per partition: the next offset to read (after the last one read)."""
        self._newest: dict[Hashable, float] = {}
        """Per partition: the newest event time read from it."""
        self._moved: dict[Hashable, float] = {}
        """Per partition: when its reading last moved on (or its end became known)."""
        self._let_go: list[Hashable] = []
        self._since = 0.0
        self._records = 0

    def assigned(self, partitions: Collection[Hashable], now: float) -> None:
        """Partitions were given: catch up on them (until their ends are known, hold)."""
        self.generation += 1
        self._partitions = frozenset(partitions)
        self.catching_up = bool(self._partitions)
        self._ends = None
        self._next, self._newest, self._moved = {}, {}, {}
        self._let_go = []
        self._since, self._records = now, 0

    @property
    def wants_ends(self) -> bool:
        return self.catching_up and self._ends is None

    def ends_known(self, generation: int, ends: Mapping[Hashable, int],
                   starts: Mapping[Hashable, int], now: float) -> CaughtUp | None:
        """The end offsets of the partitions given, asked after they were given, and where
        each is read from (its committed offset, else its first): ignored when asked for an
        earlier assignment. Returns what was caught up when nothing is left to read."""
        if generation != self.generation or not self.wants_ends:
            return None
        self._ends = {p: ends[p] for p in self._partitions if p in ends}
        for p in self._partitions:
            start = starts.get(p)
            if start is not None and start > self._next.get(p, -1):
                self._next[p] = start
            self._moved[p] = now
        return self.settle(now)

    def read(self, positions: Mapping[Hashable, int], newest: Mapping[Hashable, float],
             records: int, now: float) -> CaughtUp | None:
        """Records were scored: per partition, the offset after the last one and the newest
        event time. Returns what was caught up when nothing is left to read."""
        if not self.catching_up:
            return None
        for p, position in positions.items():
            if p in self._partitions and position > self._next.get(p, -1):
                self._next[p] = position
                self._moved[p] = now
        for p, ts in newest.items():
            if p in self._partitions and ts > self._newest.get(p, float("-inf")):
                self._newest[p] = ts
        self._records += records
        return None if self._ends is None else self.settle(now)

    def settle(self, now: float) -> CaughtUp | None:
        """Let go of partitions whose reading stood still; once none is behind, stop catching
        up and say so (once)."""
        if not self.catching_up or self._ends is None:
            return None
        for p in self._behind():
            if now - self._moved.get(p, now) >= self.stalled_after_s:
                self._let_go.append(p)
        if self._behind():
            return None
        self.catching_up = False
        return CaughtUp(self._records, now - self._since, tuple(self._let_go))

    def at(self, wall: float) -> float | None:
        """The time deadlines are judged at: ``wall`` once caught up; meanwhile the newest event
        time read from the partitions still behind, never past ``wall`` (None: hold, some
        partition behind has had nothing read)."""
        if not self.catching_up:
            return wall
        if self._ends is None:
            return None
        times = [self._newest.get(p) for p in self._behind()]
        if any(t is None for t in times):
            return None
        return min([wall, *(t for t in times if t is not None)])

    def _behind(self) -> list[Hashable]:
        assert self._ends is not None
        return [p for p, end in self._ends.items()
                if p not in self._let_go and self._next.get(p, 0) < end]
