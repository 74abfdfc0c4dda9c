"""The worker's per-key state: a changelog-backed Faust table, written behind the scoring core.

``TableStore`` is the core's state store over the table; ``ChangelogWriter`` sends its records
through a producer of their own; ``WorkerMonitor`` and ``outputs_reach_kafka_before_offsets``
make each offset commit wait until the state and outputs of the events it covers are in Kafka.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
from collections.abc import Iterable, Iterator
from typing import Any

from aiokafka import AIOKafkaProducer

from engine import metrics
from engine.entity_state import EntityState as Entity
from engine.failures import describe
from engine.kafka_client.connection import client_options
from engine.kafka_client.partitions import partition_of
from engine.worker.in_flight import InFlight

log = logging.getLogger("yujing.worker")


def through_table(table: Any, records: list[tuple[bytes, bytes | None]]) -> list[Any]:
    """Send changelog records through the table's own path (Faust's producer)."""
    return [table.send_changelog(None, key, None, value_serializer="raw") if value is None
            else table.send_changelog(None, key, value) for key, value in records]


class ChangelogWriter:
    """Sends state records to the changelog through a producer of their own.

    A flush hands the producer thousands of state records at once (megabytes); through Faust's
    producer every alert and re-keyed event produced after it would queue behind them. With its
    own producer and connection, state goes out beside them. Until it has
    started (and once it has stopped) records go through the table's own changelog path."""

    def __init__(self, bootstrap: str, table: Any, partitions: int) -> None:
        self.table = table
        self.partitions = partitions
        self.bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None
        self._open = False
        self._order = asyncio.Lock()
        """Flushes hand their records to the producer one after another: a later flush's
        record of a key must never reach the changelog before an earlier one's."""

    async def start(self) -> None:
        # Created here: aiokafka binds a producer to the running event loop.
        self._producer = AIOKafkaProducer(**client_options(self.bootstrap), linger_ms=5,
                                          max_batch_size=1 << 20, acks="all",
                                          enable_idempotence=True)
        await self._producer.start()
        self._open = True

    async def stop(self) -> None:
        self._open = False
        if self._producer is not None:
            await self._producer.stop()

    def write(self, records: list[tuple[bytes, bytes | None]]) -> list[Any]:
        """Send records (value ``None``: a tombstone); return what resolves once stored."""
        if not records:
            return []
        if not self._open:
            return through_table(self.table, records)
        return [asyncio.ensure_future(self._send_all(records))]

    async def _send_all(self, records: list[tuple[bytes, bytes | None]]) -> None:
        # One batch per partition rather than a ``send`` per record: a commit writes thousands
        # of records, and batches cost a fraction of the CPU (``bench/README.md``).
        producer = self._producer
        assert producer is not None
        topic, partitions = self.table.changelog_topic.get_topic_name(), self.partitions
        batches: dict[int, Any] = {}
        sent = []
        async with self._order:
            for key, value in records:
                # The partition the table's partitioner would choose (the key's events' one).
                partition = partition_of(key, partitions)
                batch = batches.get(partition)
                if batch is None:
                    batch = batches[partition] = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:  # full
                    sent.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = batches[partition] = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)  # an empty one takes any
            for partition, batch in batches.items():
                sent.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*sent)


FLUSH_SLICE_S = 0.005
"""How long a commit's state write runs before it lets fetches and batches run."""
FLUSH_PAUSE_S = 0.02
"""How long it lets them run (see ``TableStore.flush_for_commit``)."""


class TableStore:
    """The core's state store over a Faust table of ``key bytes -> pickled {stream: Entity}``.

    Table keys are the entity keys themselves, so the producer's partitioner puts each changelog
    record in the partition of the events that changed it (``use_partitioner=True``), and writes
    made from a timer (no event at hand) land in the right place too.

    Write-behind: the core works on decoded entities held here; a save only marks the key
    dirty, and a flush pickles each dirty key once into the table (one changelog record per
    key per flush, however many events changed it). Each offset commit first writes the keys
    changed before it started, a slice at a time (``flush_for_commit``), so the changelog holds
    the state of every committed event; ``flush`` writes everything at once when partitions are
    revoked, at shutdown, and from the timer when no commit has written state for a while. State
    may run ahead of the committed offsets (a commit that fails, a revocation): the events read
    again are skipped by each entity's origin marks (``EntityState.origins``). Pickling whole
    entities per batch was the worker's largest cost.

    The table holds bytes (its changelog is raw) and this store pickles: a Faust table derives
    its changelog codec from its value type, which for plain Python objects is JSON. The cache
    is dropped whenever partitions move, after which the table (recovered from the changelog)
    is the truth again.
    """

    def __init__(self, table: Any, partitions: int, in_flight: InFlight,
                 writer: ChangelogWriter) -> None:
        self.table = table
        self.writer = writer
        self.partitions = partitions
        self.owned: set[int] | None = None
        self._cache: dict[str, dict[str, Entity]] = {}
        self._dirty: set[str] = set()
        self._for_commit: list[str] = []
        self.last_flush = time.monotonic()
        self.in_flight = in_flight

    def discard(self) -> None:
        """Forget the cache and any change not yet flushed.

        Done once a rebalance's table recovery completes: the recovered table is the truth
        then (the revocation before it flushed everything scored)."""
        self._dirty.clear()
        self._cache.clear()

    def _owns(self, key: str) -> bool:
        if self.owned is None:
            return True
        return partition_of(key.encode(), self.partitions) in self.owned

    def _streams(self, key: str) -> dict[str, Entity] | None:
        streams = self._cache.get(key)
        if streams is None:
            raw = self.table.get(key.encode())
            if raw is None:
                return None
            try:
                streams = pickle.loads(raw)
            except Exception as exc:  # a corrupted record, or one of an incompatible version
                # Read again at every event and rebalance, it would stop this key (or the
                # worker) for good: the key's state starts afresh instead, and says so.
                metrics.STATE_UNREADABLE.inc()
                log.error("the state of key %r could not be read (%s): it starts afresh",
                          key, describe(exc))
                streams = {}
            self._cache[key] = streams
        return streams

    def load(self, stream: str, key: str) -> Entity | None:
        # A cached key was owned when it was loaded, and the cache is dropped whenever
        # partitions move: only keys not yet cached need the ownership hash.
        streams = self._cache.get(key)
        if streams is not None:
            return streams.get(stream)
        if not self._owns(key):
            return None
        streams = self._streams(key)
        return None if streams is None else streams.get(stream)

    def save(self, stream: str, key: str, entity: Entity) -> None:
        streams = self._streams(key)
        if streams is None:
            streams = self._cache[key] = {}
        streams[stream] = entity
        self._dirty.add(key)

    def delete(self, stream: str, key: str) -> None:
        streams = self._streams(key)
        if streams is None or stream not in streams:
            return
        del streams[stream]
        self._dirty.add(key)

    def flush(self) -> int:
        """Write every dirty key to the table (its changelog) at once; return how many."""
        started = self.last_flush = time.monotonic()
        written = self._write(self._dirty)
        self._dirty = set()
        metrics.STATE_FLUSH_SECONDS.observe(time.monotonic() - started)
        return written

    def mark_for_commit(self) -> None:
        """Note the keys changed by the events an offset commit is about to cover (called as
        the commit starts, before Faust reads which offsets are acknowledged)."""
        self._for_commit = list(self._dirty)

    async def flush_for_commit(self, slice_s: float = FLUSH_SLICE_S,
                               pause_s: float = FLUSH_PAUSE_S, group: int = 8) -> int:
        """Write the keys noted by ``mark_for_commit``, ``group`` keys at a time: after each
        ``slice_s`` of writing, hand that slice's records to the changelog and let the event
        loop run for ``pause_s``. A key changed again before its group is written goes with
        its newer state (ahead of the offsets, which ``EntityState.origins`` allows), one changed
        after its group stays dirty for the next commit, and one another flush wrote
        meanwhile is skipped.

        The pauses are long because Faust's fetch loop needs several turns of the event loop
        for each message it hands to a stream: with short ones every event waits for the whole
        write; with 5 ms of writing per 20 ms of pause the fetch loop keeps up
        (``bench/README.md``)."""
        keys, self._for_commit = self._for_commit, []
        self.last_flush = time.monotonic()
        clock = time.monotonic
        seconds = 0.0
        written = 0
        records: list[tuple[bytes, bytes | None]] = []
        started = clock()
        for start in range(0, len(keys), group):
            dirty = [key for key in keys[start:start + group] if key in self._dirty]
            self._dirty.difference_update(dirty)
            self._pickle(dirty, records)
            if clock() - started >= slice_s and start + group < len(keys):
                written += self._send(records)
                records = []
                seconds += clock() - started
                await asyncio.sleep(pause_s)
                started = clock()
        written += self._send(records)
        metrics.STATE_FLUSH_SECONDS.observe(seconds + clock() - started)
        return written

    def _write(self, dirty: Iterable[str]) -> int:
        records: list[tuple[bytes, bytes | None]] = []
        self._pickle(dirty, records)
        return self._send(records)

    def _pickle(self, dirty: Iterable[str], records: list[tuple[bytes, bytes | None]]) -> None:
        """Put the state of ``dirty`` keys in the table, their changelog records in
        ``records``."""
        table = self.table
        for key in dirty:
            streams = self._cache.get(key)
            raw = key.encode()
            # What ``table[raw] = value`` does: the store, then the changelog (sent apart, so
            # the commit can wait for exactly these records).
            if streams:
                value = pickle.dumps(streams, protocol=pickle.HIGHEST_PROTOCOL)
                table.data[raw] = value
                records.append((raw, value))
            else:
                self._cache.pop(key, None)
                if raw in table.data:
                    del table.data[raw]
                    records.append((raw, None))  # a tombstone

    def _send(self, records: list[tuple[bytes, bytes | None]]) -> int:
        self.in_flight.prune()
        for future in self.writer.write(records):
            self.in_flight.add(future)
        metrics.STATE_RECORDS_WRITTEN.inc(len(records))
        return len(records)

    def entities(self) -> Iterator[tuple[str, str, Entity]]:
        for key in {*(k.decode() for k in self.table), *self._cache}:
            if self._owns(key):
                for stream, entity in (self._streams(key) or {}).items():
                    yield stream, key, entity
