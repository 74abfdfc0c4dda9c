"""The Faust worker: department topics in, the scoring core in the middle, alerts out.

Agents only move data. Events reach the core in batches (``take_ready``: as soon as the fetched
events are in, not on a timer), alerts and dead letters leave through the producer's buffer
(``send_soon``, no round trip per message), and per-key state lives in one changelog-backed
table keyed exactly like the source topics, so a restarted or rebalanced worker recovers the
state of the partitions it is given.

An event whose Kafka key is not its entity key (a producer that keys differently, or a rule keyed
by another field such as ``company_id``) is forwarded to the internal ``<app-id>-repartition`` topic
keyed by the right value, and scored by the worker that owns that key; when that is this worker
(it reads the key's partition of that topic), it is scored at once instead (``rekey_here``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import pickle
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from faust.sensors import Monitor
from pydantic import BaseModel

from engine import metrics
from engine.batching import take_ready
from engine.core import Entity, Origin, ScoringCore
from engine.failures import ScoringFailure, describe, is_fatal
from engine.fetch_drain import drain_inline
from engine.fetch_order import FetchOrder, guard_fetches, seek_in_consumer_thread
from engine.fetch_pacing import FetchPacing, Pace, apply_pace
from engine.in_flight import InFlight, Record
from engine.kafka_admin import ensure_topics
from engine.lifecycle import SilenceBook
from engine.partition_watch import PartitionWatch, Progress
from engine.reference import ReferenceReader
from engine.reload import ReloadReport, RuleWatcher
from engine.rule_sandbox import check_in_child, start_server
from models.base import Reading, Verdict
from models.refdata import ReferenceData
from topics.bounds import MAX_RECORD_BYTES, fits
from topics.codec import Event, EventTimePolicy, compact_value, dead_letter, decode
from topics.records import Alert, DeadLetter
from topics.registry import (
    ALERTS,
    DEADLETTER,
    DEFAULT_PARTITIONS,
    EVENT_TOPICS,
    SILENCES,
    TopicSpec,
    partition_of,
)

log = logging.getLogger("yujing.worker")

REPARTITION_SUFFIX = "repartition"
FORWARD_RECORD_BYTES = 256 * 1024
"""Largest re-keying record (well under Kafka's default 1 MB message limit)."""
FORWARD_RAW_BYTES = 64 * 1024
"""A re-keyed event larger than this travels as its validated fields, not its original bytes."""
STATE_TABLE = "state"
END_OFFSETS_INTERVAL_S = 10.0
"""How often the worker asks the broker for the end offsets of the partitions it reads (the
partition watch's measure of records waiting; aiokafka's own figure stops with its fetches)."""
END_OFFSETS_TIMEOUT_S = 5.0
COMMIT_STILL_S = 30.0
"""A partition whose committed offset has not moved for this long while events past it were
handed on is read again from the committed offset (commits run every few seconds)."""


STREAM_BUFFER = 65536
"""Faust's default is 4096. On a backlog a larger buffer scored 1.4 times the events a second,
with the same latency at a given rate (``bench/README.md``), for about 40 MB of fetched
200-byte events held at most per stream; at a steady rate it stays nearly empty."""


class WorkerSettings(BaseModel):
    bootstrap: str = "127.0.0.1:9092"
    rules: list[Path] = [Path("rules")]
    app_id: str = "yujing"
    partitions: int = DEFAULT_PARTITIONS
    batch_max: int = 1000
    batch_within_s: float = 0.05
    """The longest a batch waits to go: normally it goes as soon as the fetched events are in
    (``engine.batching``), this bounds one that missed that moment."""
    producer_linger_s: float = 0.01
    session_timeout_s: float = 10.0
    tick_interval_s: float = 1.0
    reload_interval_s: float = 5.0
    """How often rule files are checked for changes (0: never)."""
    reload_timeout_s: float = 60.0
    """How long loading changed rule files may take (in a child process, then here)."""
    sweep_interval_s: float = 300.0
    """How often idle state is dropped."""
    deadline_lateness_s: float = 2.0
    """Deadlines fire this long after they pass, so events in flight can still cancel them."""
    commit_interval_s: float = 2.8
    """How often offsets are committed, each commit writing the dirty state first (Faust's
    default): shorter means smaller state writes (the loop scores nothing while one runs) but
    more of them."""
    rekey_here: bool = True
    """Score here an event re-keyed to a key whose re-keying partition this worker reads, rather
    than send it through the re-keying topic and read it back (off: every re-keyed event takes
    the topic, as with several workers it does for the keys other workers own)."""
    fetch_busy_above: float = 0.0
    """Events/s above which the broker may hold a fetch to gather records (``FetchPacing``);
    0, the default, keeps Faust's fetches (each returns at its first record). 500 saved the
    broker 13–21 points of a core at 2,800 events/s, but cost 10% of the throughput on a
    backlog and 10–20 ms of median latency (``bench/README.md``)."""
    fetch_busy_min_bytes: int = 32768
    fetch_busy_wait_s: float = 0.01
    stream_buffer: int = STREAM_BUFFER
    """Events fetched and not yet scored that a stream holds (Faust's
    ``stream_buffer_maxsize``). When it is full Faust pauses the partition's fetches and hands
    each further message on through a task of its own: on a backlog that churn, not the
    scoring, sets the pace."""
    state_flush_interval_s: float = 10.0
    """While no offset commit has flushed state for this long (no events flowing), the timer
    writes dirty state (changes made by the clock alone) to the changelog."""
    max_future_s: float = 600.0
    """Events dated further ahead of the wall clock are dead-lettered (``topics.codec``)."""
    max_event_age_s: float = 7 * 86400.0
    """Events dated further back are dead-lettered: older than any rule's state lasts."""
    metrics_port: int = 9464
    data_dir: Path = Path(".yujing/worker")


class NoRulesError(RuntimeError):
    """A worker with no rule in force would consume and commit every event unscored."""


def through_table(table: Any, records: list[tuple[bytes, bytes | None]]) -> list[Any]:
    """Send changelog records through the table's own path (Faust's producer)."""
    return [table.send_changelog(None, key, None, value_serializer="raw") if value is None
            else table.send_changelog(None, key, value) for key, value in records]


class ChangelogWriter:
    """Sends state records to the changelog through a producer of their own.

    A flush hands the producer thousands of state records at once (megabytes: a learned model's
    state is 16-62 KB); through Faust's producer every alert and re-keyed event produced after
    it would queue behind them, which was the worker's worst latency (over a second at half
    load). With its own producer and connection, state goes out beside them. Until it has
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
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5,
                                          max_batch_size=1 << 20)
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
        # of records, and the batches cost a third of the CPU (2,500 records: 12-21 ms
        # instead of 33-63 ms on this project's machine).
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
    again are skipped by each entity's origin marks (``core.ORIGINS``). Pickling whole entities
    per batch was the worker's largest cost.

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
        its newer state (ahead of the offsets, which ``core.ORIGINS`` allows), one changed
        after its group stays dirty for the next commit, and one another flush wrote
        meanwhile is skipped.

        Why the pauses are long: pickling a commit's 2,000-2,500 keys (some with learned
        models of 20-60 KB) takes 100-200 ms, and Faust's fetch loop needs several turns of
        the event loop for each message it hands to a stream. With a bare ``sleep(0)``
        between chunks it moved one step per chunk; with 2 ms pauses about one message per
        pause, with 5 ms about six: every event waited for the whole write, 300-500 ms at
        half load, the worker's worst latency. With 5 ms of writing per 20 ms of pause the
        write takes a fifth of the loop, the fetch loop keeps up, and the commit finishes
        under a second later (``bench/README.md``)."""
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


class WorkerMonitor(Monitor):
    """Faust's monitor without its per-message bookkeeping, and the worker's commit hook.

    Faust calls every sensor four to six times per message (in, into the stream, out of it,
    acked, sent, send completed). Its default monitor keeps statistics for Faust's web views,
    which the worker does not serve (its figures are Prometheus metrics counted per batch), so
    those hooks do nothing here; rebalance and commit hooks, a few a minute, keep Faust's.

    ``on_commit_initiated`` notes the keys the committed events changed (Faust reads the
    acknowledged offsets right after it); the commit writes them before the offsets (see
    ``_outputs_reach_kafka_before_offsets``), so no committed event's state is missing.
    """

    def __init__(self, store: TableStore, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = store

    def on_commit_initiated(self, consumer: Any) -> Any:
        self.store.mark_for_commit()
        return super().on_commit_initiated(consumer)

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None

    def on_table_del(self, table: Any, key: Any) -> None:
        return None

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int,
                          valsize: int) -> None:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        return None


def _outputs_reach_kafka_before_offsets(app: Any, store: TableStore,
                                         in_flight: InFlight) -> None:
    """Make each offset commit wait until the broker has what the committed events produced.

    ``WorkerMonitor`` notes the keys the committed events changed as the commit starts; Faust
    then flushes its own producer (alerts, re-keyed events) and commits, but knows nothing of
    the state. Faust has no hook between the two, so the consumer's ``_commit_offsets`` is
    wrapped to write that state (through the ``ChangelogWriter``) and wait for ``in_flight``
    first."""
    consumer = app.consumer
    commit_offsets = getattr(consumer, "_commit_offsets", None)
    if commit_offsets is None:
        log.warning("this Faust has no Consumer._commit_offsets: offsets may be committed "
                    "before the records their events produced reach Kafka (state is then "
                    "written by the timer only)")
        return

    # Bounded: a commit runs inside a rebalance too, which must finish within the session.
    timeout = app.conf.broker_session_timeout / 3

    async def after_the_outputs(offsets: Any, start_new_transaction: bool = True) -> bool:
        # Pauses let events through while the state is written; with the flow stopped (a
        # rebalance) there are none to let through, and the rebalance waits for the commit.
        await store.flush_for_commit(pause_s=FLUSH_PAUSE_S if consumer.flow_active else 0.0)
        if not await in_flight.delivered(timeout):
            return False  # committed later (or read again by the next owner): at least once
        return bool(await commit_offsets(offsets, start_new_transaction=start_new_transaction))

    consumer._commit_offsets = after_the_outputs


class Worker:
    """Builds the Faust app and holds what its agents share."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.reference = ReferenceData()
        self.silences = SilenceBook()
        self.watcher = RuleWatcher(settings.rules, self.reference)
        loaded = self.watcher.load()
        for error in loaded.errors:
            log.error("rule file rejected: %s", error)
        if not loaded.rules:
            raise NoRulesError(
                f"no valid rule file in {', '.join(map(str, settings.rules))} "
                f"({len(loaded.errors)} problems): refusing to consume events it would not score")
        self.time_policy = EventTimePolicy(settings.max_future_s, settings.max_event_age_s)
        self._oversize_logged: set[str] = set()
        self._reloading = False
        self._failure_logged: dict[str, float] = {}
        metrics.RULES_LOADED.set(len(loaded.rules))
        metrics.RULE_FILE_ERRORS.set(len(loaded.errors))
        self.app = faust.App(
            settings.app_id,
            broker=f"kafka://{settings.bootstrap}",
            store="memory://",
            datadir=str(settings.data_dir),
            topic_partitions=settings.partitions,
            topic_replication_factor=1,
            broker_session_timeout=settings.session_timeout_s,
            broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
            consumer_auto_offset_reset="earliest",
            producer_linger=settings.producer_linger_s,
            broker_commit_interval=settings.commit_interval_s,
            # Faust's consumer stops reading while a commit it starts every N acknowledged
            # messages runs (waiting for the outputs, above): commits come from the interval only.
            broker_commit_every=1 << 62,
            web_enabled=False,
            value_serializer="raw",
            key_serializer="raw",
            stream_buffer_maxsize=settings.stream_buffer,
        )
        # Keys are the entity keys' bytes, serialized raw: the changelog record of a key then
        # hashes to the partition of that key's events (a JSON-encoded key would not).
        self.table = self.app.Table(STATE_TABLE, partitions=settings.partitions,
                                    use_partitioner=True, key_type=bytes, value_type=bytes)
        self.in_flight = InFlight(on_refused=self._refused)
        self.changelog = ChangelogWriter(settings.bootstrap, self.table, settings.partitions)
        self.store = TableStore(self.table, settings.partitions, self.in_flight, self.changelog)
        # Set before the app starts: Faust adds its monitor to the sensors then.
        self.app.monitor = WorkerMonitor(self.store)
        _outputs_reach_kafka_before_offsets(self.app, self.store, self.in_flight)
        self.core = ScoringCore(loaded.rules, self.store, on_unused=_count_unused)
        self._undecided_reported: dict[str, int] = {}
        """``core.undecided`` as last added to ``yujing_events_undecided_total``."""
        self._local_streams = self.core.topic_keyed_streams
        self._local_only = self.core.topics_keyed_by_topic_only
        self._assignment: frozenset[Any] | None = None
        self.watch = PartitionWatch()
        self.commit_watch = PartitionWatch(after_s=COMMIT_STILL_S)
        """Partitions whose committed offset stands still behind what was handed on."""
        self._repartition_topic = f"{settings.app_id}-{REPARTITION_SUFFIX}"
        self._read_topics = frozenset((*EVENT_TOPICS, self._repartition_topic))
        self._rekey_here: frozenset[int] = frozenset()
        """Re-keying partitions this worker reads (and owns the state of): an event re-keyed
        to one of them is scored at once (``WorkerSettings.rekey_here``)."""
        self.fetch_order = FetchOrder()
        self._seeks: set[Any] = set()
        self.fetch_pacing = FetchPacing(settings.fetch_busy_above, settings.fetch_busy_min_bytes,
                                        settings.fetch_busy_wait_s)
        self._paced: Pace | None = None
        self._consumed_since_pace = 0
        self._paced_at = time.monotonic()
        self._ends: dict[Any, int] = {}
        """The end offsets of the partitions read, as last asked of the broker."""
        self._starts: dict[Any, int] = {}
        """Their first offsets (where a partition with no committed offset is read from)."""
        guard_fetches(self.app.consumer, self.fetch_order, self._read_topics)
        drain_inline(self.app.consumer)  # no tasks per message fetched

        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.event_topics = self.app.topic(*EVENT_TOPICS, **raw)
        # Named after the app, like Faust's own internal topics, so two deployments on one
        # cluster never read each other's re-keyed events.
        self.repartition = self.app.topic(f"{settings.app_id}-{REPARTITION_SUFFIX}",
                                          partitions=settings.partitions, internal=True, **raw)
        self.alerts = self.app.topic(ALERTS.name, **raw)
        self.deadletters = self.app.topic(DEADLETTER.name, **raw)
        self._define_agents()

        # Faust holds stream processing whenever more than 100 messages wait in its producer
        # buffer; a batch of a thousand events writes more than that (alerts, re-keyed events,
        # state), so let the buffer hold a few batches before it throttles.
        self.app.producer.buffer.max_messages = max(4 * settings.batch_max, 1000)

        @self.app.on_before_shutdown.connect
        async def _flush_state(app: Any, **_: Any) -> None:
            self.store.flush()
            await self.in_flight.delivered(settings.session_timeout_s)
            await self.changelog.stop()

        @self.app.on_partitions_revoked.connect
        async def _revoked(app: Any, revoked: Any, **_: Any) -> None:
            # Hand over the state of everything scored, in Kafka before anyone recovers from
            # the changelog (a record still in a buffer would lose to an older one). Faust's
            # commit during its revocation normally wrote it already (not when it found another
            # commit running). The state may be ahead of the committed offsets (Faust forgets
            # the acknowledgements since its last commit before it commits there): the next
            # owner reads those events again and each entity skips the ones it has applied
            # (``core.ORIGINS``).
            # Until the new assignment is taken, re-keyed events go through the topic to
            # whoever reads their partition then.
            self._rekey_here = frozenset()
            self.store.flush()
            await self.in_flight.delivered(settings.session_timeout_s / 3)

        @self.app.on_rebalance_complete.connect
        async def _recovered(app: Any, **_: Any) -> None:
            # Tables are rebuilt and streams about to resume: from the first event on, the
            # store must own exactly the partitions given (not the ones it had before).
            self.take_assignment()

    def take_assignment(self) -> None:
        """Own exactly the partitions the consumer holds now, and rebuild the deadline heap
        from their state. Called when a rebalance's table recovery completes, before any event
        of the new assignment is scored: a store still owning its old partitions would score
        the events of a newly given key against empty state."""
        assignment = frozenset(self.app.consumer.assignment()) if self.app.consumer else None
        self._assignment = assignment
        if assignment is not None:
            self.store.owned = {tp.partition for tp in assignment if tp.topic in EVENT_TOPICS}
        self._rekey_here = frozenset(
            tp.partition for tp in assignment or ()
            if tp.topic == self._repartition_topic and tp.partition in (self.store.owned or ())
        ) if self.settings.rekey_here else frozenset()
        self.store.discard()  # the recovered table is the truth now
        self.core.reschedule_all()
        self.fetch_order.reassigned(assignment or ())

    # -- agents -----------------------------------------------------------------------------

    def _define_agents(self) -> None:
        settings = self.settings

        @self.app.agent(self.event_topics, name="yujing.intake")
        async def intake(stream: Any) -> None:
            async for batch in take_ready(stream, settings.batch_max, settings.batch_within_s):
                self.guarded(self.handle_intake, batch)

        @self.app.agent(self.repartition, name="yujing.rekeyed")
        async def rekeyed(stream: Any) -> None:
            async for batch in take_ready(stream, settings.batch_max, settings.batch_within_s):
                self.guarded(self.handle_rekeyed, batch)

        reader = ReferenceReader(settings.bootstrap, self.reference, self.silences)

        @self.app.task
        async def changelog_writer() -> None:
            await self.changelog.start()

        @self.app.task
        async def reference() -> None:
            await reader.run()

        @self.app.timer(interval=settings.tick_interval_s)
        async def deadlines() -> None:
            self.handle_tick(time.time())

        @self.app.timer(interval=END_OFFSETS_INTERVAL_S)
        async def end_offsets() -> None:
            await self.poll_end_offsets()

        if settings.reload_interval_s:
            @self.app.timer(interval=settings.reload_interval_s)
            async def reload_rules() -> None:
                await self.reload_rules()

        @self.app.timer(interval=settings.sweep_interval_s)
        async def sweep() -> None:
            if self.app.rebalancing or self.app.in_recovery:
                return  # state is being rebuilt (see handle_tick)
            metrics.STATE_DROPPED.inc(self.core.sweep(time.time()))
            for failure in self.core.take_failures():
                self._report_failure(failure)

    # -- what the agents do (synchronous: nothing else runs while a batch is scored) ---------

    def guarded(self, handle: Any, batch: Sequence[Any]) -> None:
        """Score a batch; should anything escape the core's own guards (a defect in the worker
        itself), dead-letter every record of the batch with the reason rather than let Faust
        restart the agent, which loses the batch (its events count as acknowledged). Some of
        them may have been scored before the failure: accounted for twice, never lost."""
        try:
            handle(batch)
        except BaseException as exc:
            if is_fatal(exc):
                raise
            metrics.RULE_FAILURES.labels("(batch)", "score").inc()
            log.exception("a batch of %d records could not be scored: each is dead-lettered",
                          len(batch))
            for item in batch:
                message = item.message
                self.publish_dead_letter(dead_letter(
                    message.topic, message.value or b"",
                    f"its batch could not be scored: {describe(exc)}", key=message.key,
                    partition=message.partition, offset=message.offset,
                    reason_class="scoring"))

    def handle_intake(self, batch: Sequence[Any]) -> None:
        started = time.perf_counter()
        local: list[Event] = []
        origins: list[Origin | None] = []
        forwards: dict[int, list[bytes]] = {}
        here: dict[str, tuple[list[Event], list[Origin | None]]] = {}
        rekey_here = self._rekey_here
        partitions = self.settings.partitions
        newest: dict[str, float] = {}
        consumed: dict[str, int] = {}
        bounds = self.time_policy.around(time.time())
        for item in batch:
            message = item.message
            topic = message.topic
            consumed[topic] = consumed.get(topic, 0) + 1
            decoded = decode(topic, message.value, key=message.key,
                             partition=message.partition, offset=message.offset, bounds=bounds)
            if isinstance(decoded, DeadLetter):
                self.publish_dead_letter(decoded)
                continue
            if decoded.ts > newest.get(topic, 0.0):
                newest[topic] = decoded.ts
            keyed_right = message.key is not None and message.key == decoded.key.encode()
            if keyed_right:
                local.append(decoded)
                origins.append((topic, message.partition, message.offset))
                if topic in self._local_only:
                    continue  # every stream of the topic is scored here: nothing to re-key
            try:
                stream_keys = self.core.stream_keys(decoded)
            except BaseException as exc:
                if is_fatal(exc):
                    raise
                self.publish_dead_letter(dead_letter(
                    topic, message.value, f"could not be re-keyed: {describe(exc)}",
                    key=message.key, partition=message.partition, offset=message.offset,
                    reason_class="scoring"))
                continue
            for stream, key in stream_keys:
                if not (keyed_right and stream in self._local_streams):
                    # The partition the key's owner reads (as ``TableStore._owns`` decides),
                    # so the state of ``key`` is where its events arrive.
                    partition = partition_of(key.encode(), partitions)
                    if partition in rekey_here:
                        events, event_origins = here.setdefault(stream, ([], []))
                        events.append(decoded)
                        event_origins.append((topic, message.partition, message.offset))
                    else:
                        self._forward(forwards, stream, partition, message, decoded)
        self._send_forwards(forwards)
        self._score(local, self._local_streams, origins)
        # What the re-keying topic would have brought back to this worker, in the same order.
        for stream, (events, event_origins) in here.items():
            metrics.EVENTS_REKEYED_HERE.inc(len(events))
            self._score(events, frozenset((stream,)), event_origins)
        self._consumed_since_pace += len(batch)
        metrics.BATCH_SIZE.observe(len(batch))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        for topic, count in consumed.items():
            metrics.EVENTS_CONSUMED.labels(topic).inc(count)
        now = time.time()
        for topic, ts in newest.items():
            metrics.EVENT_LAG_SECONDS.labels(topic).set(now - ts)

    def _forward(self, forwards: dict[int, list[bytes]], stream: str, partition: int,
                 message: Any, event: Event) -> None:
        # The source's partition and offset travel along: the owner drops what it applied
        # already when a rebalance makes the source be read and forwarded again. A large
        # record travels as its validated fields (free text cut), so every envelope fits.
        value = message.value if len(message.value) <= FORWARD_RAW_BYTES else compact_value(event)
        forwards.setdefault(partition, []).append(
            b'{"stream":%b,"topic":%b,"p":%d,"o":%d,"value":%b}'
            % (orjson.dumps(stream), orjson.dumps(message.topic), message.partition,
               message.offset, value))

    def _send_forwards(self, forwards: dict[int, list[bytes]]) -> None:
        """One re-keying record per partition per batch (a JSON list of envelopes), not one per
        event: each Kafka record costs the producer and the consumer far more than its bytes."""
        for partition, entries in forwards.items():
            chunk: list[bytes] = []
            size = 0
            for entry in entries:
                if chunk and size + len(entry) > FORWARD_RECORD_BYTES:
                    self._send_forward_record(partition, chunk)
                    chunk, size = [], 0
                chunk.append(entry)
                size += len(entry) + 1
            self._send_forward_record(partition, chunk)

    def _send_forward_record(self, partition: int, entries: list[bytes]) -> None:
        metrics.EVENTS_REKEYED.inc(len(entries))
        self._send(self.repartition, b"%d" % partition, b"[" + b",".join(entries) + b"]",
                   f"a re-keying record of {len(entries)} events", partition=partition)

    def handle_rekeyed(self, batch: Sequence[Any]) -> None:
        by_stream: dict[str, tuple[list[Event], list[Origin | None]]] = {}
        for item in batch:
            message = item.message
            try:
                envelopes = orjson.loads(message.value)
                if not isinstance(envelopes, list):
                    envelopes = [envelopes]
                entries = [(e["stream"], e["topic"], e.get("p"), e.get("o"), e["value"])
                           for e in envelopes]
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                self.publish_dead_letter(dead_letter(
                    message.topic, message.value, f"bad repartition envelope: {exc}",
                    key=message.key, partition=message.partition, offset=message.offset,
                    reason_class="envelope"))
                continue
            for stream, topic, partition, offset, value in entries:
                # Event time was checked when the event came in (before it was re-keyed).
                decoded = decode(str(topic), value, partition=partition, offset=offset)
                if isinstance(decoded, DeadLetter):
                    self.publish_dead_letter(decoded)
                    continue
                events, origins = by_stream.setdefault(str(stream), ([], []))
                events.append(decoded)
                origins.append((topic, partition, offset)
                               if isinstance(partition, int) and isinstance(offset, int)
                               else None)
        for stream, (events, origins) in by_stream.items():
            self._score(events, frozenset((stream,)), origins)

    def _score(self, events: list[Event], streams: frozenset[str],
               origins: list[Origin | None]) -> None:
        repeated = self.core.repeated
        self.publish(self.core.process(events, streams=streams, origins=origins))
        metrics.EVENTS_REPEATED.inc(self.core.repeated - repeated)
        self._report_undecided()
        for failure in self.core.take_failures():
            self._report_failure(failure)
            if failure.index is None or failure.event is None:
                continue
            origin = origins[failure.index]
            topic, partition, offset = origin if origin is not None else (
                failure.event.topic, None, None)
            self.publish_dead_letter(dead_letter(
                topic, compact_value(failure.event), str(failure), key=failure.event.key,
                partition=partition, offset=offset, reason_class="scoring",
                rule_id=failure.rule_id))

    def _report_undecided(self) -> None:
        """Add what the core counted since the last batch to ``yujing_events_undecided_total``:
        once a batch, because events lacking an optional field can be most of a model's input
        and each increment of a Prometheus counter takes a lock."""
        reported = self._undecided_reported
        for rule_id, count in self.core.undecided.items():
            done = reported.get(rule_id, 0)
            if count != done:
                metrics.EVENTS_UNDECIDED.labels(rule_id).inc(count - done)
                reported[rule_id] = count

    def _report_failure(self, failure: ScoringFailure) -> None:
        """Count a rule's failure; log it at most once a minute per rule (a rule that fails on
        every event would otherwise fill the log)."""
        metrics.RULE_FAILURES.labels(failure.rule_id, failure.phase).inc()
        now = time.monotonic()
        if now - self._failure_logged.get(failure.rule_id, -1e9) >= 60.0:
            self._failure_logged[failure.rule_id] = now
            log.error("%s (yujing_rule_failures_total counts every one; logged once a minute "
                      "per rule)", failure)

    def handle_tick(self, now: float) -> None:
        if self.app.rebalancing or self.app.in_recovery:
            # Tables are being rebuilt from the changelog: state read now would be partial, and
            # a deadline fired from it (or a flush) would write a stale copy back.
            return
        if time.monotonic() - self.store.last_flush >= self.settings.state_flush_interval_s:
            # Changes made by the clock alone (no events, so no commit to flush them). While
            # events flow, each offset commit writes the state of the events it covers.
            self.store.flush()
        assignment = frozenset(self.app.consumer.assignment()) if self.app.consumer else None
        if assignment != self._assignment:
            self.take_assignment()  # normally done when the rebalance completed
        self.publish(self.core.advance(now - self.settings.deadline_lateness_s))
        for failure in self.core.take_failures():
            self._report_failure(failure)
        self._watch_partitions(time.monotonic())
        self._pace_fetches(time.monotonic())

    def _pace_fetches(self, now: float) -> None:
        """Set the fetches' pace from the events consumed since the last tick (only when
        ``fetch_busy_above`` asks for pacing: else Faust's fetches are left alone)."""
        if not self.settings.fetch_busy_above:
            self._consumed_since_pace = 0
            return
        pace = self.fetch_pacing.observe(self._consumed_since_pace, now - self._paced_at)
        self._consumed_since_pace, self._paced_at = 0, now
        if pace == self._paced:
            return
        kafka = getattr(getattr(self.app.consumer, "_thread", None), "_consumer", None)
        if kafka is not None and apply_pace(kafka, pace):
            self._paced = pace
            metrics.FETCH_MAX_WAIT_SECONDS.set(pace.max_wait_ms / 1000)

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
        for a while (``PartitionWatch``). With two workers, partitions (nearly always of the
        re-keying topic) were seen to stop for 10 s and more around rebalances, aiokafka
        holding fetched records that Faust did not take, and once a quiet partition whose last
        records Faust took and never handed on (no later message showed the gap)."""
        consumer = self.app.consumer
        try:
            state = consumer._thread._consumer._subscription.subscription.assignment.state_value
        except AttributeError:
            return  # not started, or between assignments
        progress = {}
        read = self._read_topics
        read_offset = consumer._read_offset
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
        stalled, recovered = self.watch.observe(now, progress)
        for tp in stalled:
            offset = progress[tp].position
            assert offset is not None  # records wait past it
            log.error("%s[%d]: nothing handed on for %.0f s from offset %s with records "
                      "waiting (%s): read again from there", tp.topic, tp.partition,
                      self.watch.after_s, offset, self._reading_state(tp, state(tp)))
            self._read_again(tp, offset)
        for tp in recovered:
            log.warning("%s[%d] is read again", tp.topic, tp.partition)
        metrics.PARTITIONS_STALLED.set(len(self.watch.stalled))
        self._watch_commits(now, progress)

    def _watch_commits(self, now: float, progress: dict[Any, Progress]) -> None:
        """Read again from the committed offset a partition whose commit stands still behind
        what was handed on: seen once at the end of a two-worker run, every event of
        ``events.emergency.report[1]`` handed on and its commit held at 1524 of 1682 (Faust
        commits only up to the first offset it has no acknowledgement for)."""
        committed = self.app.consumer._committed_offset
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
        if tp not in consumer._paused_partitions:  # Faust pauses only while tables recover
            # Back among the partitions Faust fetches, in case its buffer flow control lost it.
            consumer._buffered_partitions.discard(tp)
            if consumer._active_partitions is not None:
                consumer._active_partitions.add(tp)

    def _sought(self, seek: Any) -> None:
        self._seeks.discard(seek)
        if not seek.cancelled() and seek.exception() is not None:
            log.error("could not seek a partition to read it again: %r", seek.exception())

    def _reading_state(self, tp: Any, tp_state: Any) -> str:
        """What Faust's and aiokafka's bookkeeping say of a partition (for a stalled one)."""
        consumer = self.app.consumer
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

    async def reload_rules(self) -> None:
        """Take changed rule files into force, off the event loop: a child process loads them
        first (a file that crashes the compiler, loops or exhausts memory costs the child),
        then a thread compiles them here, within ``reload_timeout_s``."""
        if self._reloading or not self.watcher.changes():
            return
        self._reloading = True
        try:
            timeout = self.settings.reload_timeout_s
            checked = await check_in_child(self.settings.rules, timeout)
            if checked.outcome != "ok":
                why = (f"compiling the changed rule files {checked.detail.rstrip('.')}: their "
                       "previous versions stay in force")
                self.apply_reload(self.watcher.reject(why))
                return
            try:
                report = await asyncio.wait_for(asyncio.to_thread(self.watcher.reload),
                                                timeout)
            except TimeoutError:
                # The thread cannot be stopped; its result is dropped when it ends.
                self.apply_reload(self.watcher.reject(
                    f"compiling the changed rule files took longer than {timeout:.0f} s"))
                return
            self.apply_reload(report)
        finally:
            self._reloading = False

    def apply_reload(self, report: ReloadReport) -> None:
        for table, key, record in report.reference_updates:
            self.reference.put(table, key, record)
        for error in report.errors:
            log.error("rule file rejected: %s", error)
        for path in report.kept:
            log.warning("keeping the previous version of %s", path)
        metrics.RULE_FILE_ERRORS.set(len(report.errors))
        metrics.RULE_RELOADS.labels("rejected" if report.errors or report.refused
                                    else "ok").inc()
        if report.refused:
            log.error("rule reload refused: %s; the %d rules in force stay", report.refused,
                      len(report.rules))
            return
        self.core.set_rules(report.rules)
        self._local_streams = self.core.topic_keyed_streams
        self._local_only = self.core.topics_keyed_by_topic_only
        metrics.RULES_LOADED.set(len(report.rules))
        log.info("rules reloaded: %d in force; added %s, changed %s, removed %s",
                 len(report.rules), report.added, report.changed, report.removed)

    # -- output ------------------------------------------------------------------------------

    def publish(self, alerts: list[Alert]) -> None:
        if not alerts:
            return
        now = time.time()
        self.silences.apply(alerts, now)
        for alert in alerts:
            alert.emitted_at = now
            self._send(self.alerts, alert.alert_id.encode(), alert.model_dump_json().encode(),
                       f"the {alert.state} alert {alert.alert_id} of {alert.model_id}")
            metrics.ALERTS_PUBLISHED.labels(alert.model_id, alert.severity, alert.state).inc()
            if alert.silenced_by:
                metrics.ALERTS_SUPPRESSED.labels(alert.model_id, "silenced").inc()
            elif alert.inhibited_by:
                metrics.ALERTS_SUPPRESSED.labels(alert.model_id, "inhibited").inc()

    def publish_dead_letter(self, letter: DeadLetter) -> None:
        metrics.EVENTS_DEADLETTERED.labels(letter.source_topic, letter.reason_class).inc()
        self._send(self.deadletters, letter.source_topic.encode(),
                   letter.model_dump_json().encode(), "a dead letter")

    def _send(self, channel: Any, key: bytes, value: bytes, what: str,
              partition: int | None = None) -> None:
        """Hand a record to Faust's producer, unless Kafka would refuse it: a record over
        ``MAX_RECORD_BYTES`` makes the producer raise inside Faust, which stops the worker,
        and the restarted worker meets the same input again. Such a record is dead-lettered
        (a prefix, its size and hash: that fits), counted, and logged once per topic."""
        if not fits(key, value):
            topic = channel.get_topic_name()
            metrics.RECORDS_OVERSIZED.labels(topic).inc()
            if topic not in self._oversize_logged:
                self._oversize_logged.add(topic)
                log.error("%s is %d bytes, more than the %d a Kafka record may have: "
                          "dead-lettered instead (logged once per topic; "
                          "yujing_records_oversized_total counts them)", what,
                          len(key) + len(value), MAX_RECORD_BYTES)
            self.publish_dead_letter(dead_letter(
                topic, value, f"{what} is {len(key) + len(value)} bytes, more than the "
                f"{MAX_RECORD_BYTES} a Kafka record may have", key=key,
                reason_class="oversized"))
            return
        self.in_flight.add(channel.send_soon(key=key, value=value, partition=partition),
                           Record(channel.get_topic_name(), key, value))

    def _refused(self, record: Record | None, exc: BaseException) -> None:
        """A send the broker refused for what the record is (the topic's own limit may be
        lower than ``MAX_RECORD_BYTES``): dead-letter it, so the commit can go on."""
        topic = "(state changelog)" if record is None else record.topic
        metrics.RECORDS_OVERSIZED.labels(topic).inc()
        if topic not in self._oversize_logged:
            self._oversize_logged.add(topic)
            log.error("the broker refused a record for %s: %s (logged once per topic; "
                      "dead-lettered)", topic, describe(exc))
        if record is not None:
            self.publish_dead_letter(dead_letter(
                topic, record.value, f"the broker refused it: {describe(exc)}", key=record.key,
                reason_class="oversized"))


def _count_unused(rule: Any, reading: Reading) -> None:
    if reading.verdict is Verdict.LATE:
        metrics.EVENTS_LATE.labels(rule.id).inc()
    else:
        metrics.READINGS_SKIPPED.labels(rule.id, str(reading.evidence.get("skipped"))).inc()


def tune_gc() -> None:
    """Make Python's full garbage collections rare and short, and time them.

    A worker's heap is mostly objects that never become garbage: modules, compiled rules, and
    the cached state of every key (hundreds of thousands of objects). Python walks all of them
    in each full collection, which with default settings ran every 4 s or so for 100-200 ms
    with nothing freed, the worker's largest pauses after the state write (the slowest latency
    probes sat right before them). What exists once the rules are loaded is frozen out of the
    collector's reach, and a full collection waits for ten times as many younger collections
    as by default. The worker makes little cyclic garbage (a few hundred objects a minute), so
    memory does not suffer: ``yujing_gc_full_pause_seconds`` shows what is left."""
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 100)
    started = 0.0

    def time_full_collections(phase: str, info: dict[str, Any]) -> None:
        nonlocal started
        if info["generation"] == 2:
            if phase == "start":
                started = time.perf_counter()
            else:
                metrics.GC_FULL_PAUSE_SECONDS.observe(time.perf_counter() - started)

    gc.callbacks.append(time_full_collections)


def run_worker(settings: WorkerSettings, loglevel: str = "info") -> None:
    """Run a worker in this process until it is stopped (SIGTERM / Ctrl-C)."""
    from faust.worker import Worker as FaustWorker

    class QuietLibrariesWorker(FaustWorker):
        def on_setup_root_logger(self, logger: Any, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            # Faust and aiokafka format a debug line for every message sent when their
            # loggers let debug through: a few percent of the worker's time, for nothing.
            for name in ("aiokafka", "faust", "mode"):
                logging.getLogger(name).setLevel(max(level, logging.INFO))

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The re-keying topic exists, with a leader, before the consumer joins its group: a topic
    # Faust creates while it starts can be missing from the first assignment, and the consumer
    # then only sees it at its next metadata refresh (minutes later).
    asyncio.run(ensure_topics(settings.bootstrap, [TopicSpec(
        f"{settings.app_id}-{REPARTITION_SUFFIX}", "key", DeadLetter, "event",
        partitions=settings.partitions, description="re-keyed events"), SILENCES]))
    worker = Worker(settings)
    if settings.reload_interval_s:
        start_server()  # the child processes that load changed rule files fork from it
    tune_gc()
    metrics.serve(settings.metrics_port)
    QuietLibrariesWorker(worker.app, loglevel=loglevel, quiet=True).execute_from_commandline()
