"""Partitions handed on in offset order from Faust's fetch loop
(engine/worker/faust_internals/fetch_order.py).

``guard_fetches`` wraps a consumer's ``getmany``; here the consumer is a stand-in with the
two things the wrapper uses (``getmany`` and ``_read_offset``), driven the way Faust's fetch
loop drives it: the read offset is set after each message handed on."""

from collections import defaultdict
from types import SimpleNamespace

from faust.types import TP

from engine import metrics
from engine.worker.faust_internals.fetch_order import FetchOrder, guard_fetches

TOPIC = "events.hazchem.facility"
A, B = TP(TOPIC, 0), TP(TOPIC, 1)
CHANGELOG = TP("yujing-state-changelog", 0)


class FetchLoop:
    """Faust's consumer as its fetch loop sees it: each ``fetch`` is one ``getmany`` call
    returning those (partition, offset) records; a seek sets the read offset, and each message
    handed on moves it (what the loop does, ``Consumer._drain_messages``)."""

    def __init__(self) -> None:
        self.order = FetchOrder()
        self._read_offset: dict = defaultdict(lambda: None)
        self._batch: list[tuple[TP, int]] = []
        self.sought: list[tuple[TP, int]] = []
        self.getmany = self._getmany
        guard_fetches(self, self.order, {TOPIC}, seek=self._seek_back)

    async def _seek_back(self, tp: TP, offset: int) -> None:
        self.sought.append((tp, offset))
        self._read_offset[tp] = offset

    async def _getmany(self, timeout: float):
        for tp, offset in self._batch:
            yield tp, SimpleNamespace(offset=offset)

    def seek(self, tp: TP, offset: int) -> None:
        """Faust's own seek (after an assignment: to the committed offset)."""
        self._read_offset[tp] = offset

    async def fetch(self, *records: tuple[TP, int]) -> list[tuple[TP, int]]:
        self._batch = list(records)
        handed_on = []
        async for tp, message in self.getmany(timeout=1.0):
            r_offset = self._read_offset[tp]
            if r_offset is None or message.offset >= r_offset:
                handed_on.append((tp, message.offset))
                self._read_offset[tp] = message.offset
        return handed_on


def counted(name: str, topic: str = TOPIC) -> float:
    return metrics.sample_value(name, {"topic": topic}) or 0.0


async def test_a_message_ahead_of_its_partition_is_not_handed_on_and_the_partition_is_sought_back(
        caplog):
    loop = FetchLoop()
    rewinds = counted("yujing_consumer_rewinds_total")
    loop.seek(A, 100)  # the assignment's seek to the committed offsets
    loop.seek(B, 7)
    assert await loop.fetch((A, 100), (A, 101), (B, 7)) == [(A, 100), (A, 101), (B, 7)]
    # fetched ahead (Faust would count 102-4430 as acknowledged): A is sought back to 102 and
    # the rest of its records in this fetch are dropped; B goes on
    assert await loop.fetch((A, 4431), (B, 8), (A, 4432)) == [(B, 8)]
    assert loop.sought == [(A, 102)]
    assert loop._read_offset[A] == 102  # Faust's loop reads on from there, nothing dropped
    assert counted("yujing_consumer_rewinds_total") == rewinds + 1
    assert "fetched offset 4431 while offsets from 102 were not handed on" in caplog.text
    # the read again, in order
    assert await loop.fetch((A, 102), (A, 103)) == [(A, 102), (A, 103)]


async def test_the_first_message_after_a_seek_must_be_the_one_sought_to():
    loop = FetchLoop()
    loop.seek(A, 911)
    assert await loop.fetch((A, 4431)) == []
    assert loop.sought == [(A, 911)]
    assert await loop.fetch((A, 911)) == [(A, 911)]


async def test_read_again_from_an_earlier_commit_is_in_order():
    # after a rebalance Faust seeks a partition this worker kept back to the committed offset:
    # events read twice are fine (the core skips repeats), going back is not a gap
    loop = FetchLoop()
    loop.seek(A, 100)
    assert await loop.fetch((A, 100), (A, 101), (A, 102)) == [(A, 100), (A, 101), (A, 102)]
    loop.order.reassigned([A])
    loop.seek(A, 95)
    assert await loop.fetch((A, 95), (A, 96)) == [(A, 95), (A, 96)]
    assert loop.sought == []


async def test_a_kept_partition_before_the_seek_goes_on_from_this_workers_frontier():
    # Faust forgets its read offsets when partitions are revoked: until it seeks again, a
    # partition this worker keeps can only go on from where this worker left it
    loop = FetchLoop()
    loop.seek(A, 100)
    assert await loop.fetch((A, 100), (A, 101)) == [(A, 100), (A, 101)]
    loop._read_offset.pop(A)
    loop.order.reassigned([A, B])
    assert await loop.fetch((A, 4431)) == [] and loop.sought == [(A, 102)]


async def test_a_partition_given_away_and_back_starts_where_the_group_committed():
    loop = FetchLoop()
    loop.seek(A, 100)
    assert await loop.fetch((A, 100), (A, 101)) == [(A, 100), (A, 101)]
    loop.order.reassigned([B])  # another worker reads A on meanwhile
    loop.order.reassigned([A, B])
    loop._read_offset.pop(A)  # revoked
    assert await loop.fetch((A, 3600)) == []  # before the seek: not handed on, not sought
    loop.seek(A, 3000)
    assert await loop.fetch((A, 3000)) == [(A, 3000)] and loop.sought == []


async def test_a_gap_that_comes_again_after_the_seek_is_taken_as_it_is(caplog):
    """Records removed by retention, say: the partition is sought back once, not forever."""
    loop = FetchLoop()
    skipped = counted("yujing_events_skipped_by_consumer_total")
    loop.seek(A, 100)
    assert await loop.fetch((A, 150), (A, 151)) == [] and loop.sought == [(A, 100)]
    assert await loop.fetch((A, 150), (A, 151)) == [(A, 150), (A, 151)]
    assert loop.sought == [(A, 100)]
    assert counted("yujing_events_skipped_by_consumer_total") == skipped + 50
    assert "offsets 100-149 are not in the log any more" in caplog.text


async def test_other_topics_pass_as_they_are():
    # a table's changelog is compacted: its gaps are normal
    loop = FetchLoop()
    loop.seek(CHANGELOG, 0)
    assert await loop.fetch((CHANGELOG, 5), (CHANGELOG, 90)) == [(CHANGELOG, 5), (CHANGELOG, 90)]
    assert loop.sought == []


async def test_one_offset_missing_while_reading_on_is_a_transaction_marker():
    loop = FetchLoop()
    loop.seek(A, 100)
    assert await loop.fetch((A, 100), (A, 102), (A, 103), (A, 105)) == [
        (A, 100), (A, 102), (A, 103), (A, 105)]
    assert loop.sought == []
    assert await loop.fetch((A, 108)) == [] and loop.sought == [(A, 106)]  # two: not a marker


async def test_a_new_partition_is_not_read_before_the_consumer_seeks_it():
    # Seen at 07:38: a partition newly assigned delivered offsets 3600-3603 before Faust sought
    # it to the committed 1091; handed on, their keys' marks skipped 1091-3599 as repeats
    loop = FetchLoop()
    assert await loop.fetch((A, 3600), (A, 3601), (B, 7)) == []
    assert loop.sought == []  # the consumer's own seek is still to come
    loop.seek(A, 1091)
    assert await loop.fetch((A, 1091), (A, 1092)) == [(A, 1091), (A, 1092)]


async def test_a_new_group_reads_from_where_the_consumer_starts():
    # nothing committed: the consumer's seek leaves no offset, and the first message is the start
    loop = FetchLoop()
    loop.seek(A, None)
    assert await loop.fetch((A, 0), (A, 1)) == [(A, 0), (A, 1)]
