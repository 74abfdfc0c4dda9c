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
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faust
import orjson
from pydantic import BaseModel

from engine import metrics
from engine.batching import take_ready
from engine.core import Origin, ScoringCore
from engine.failures import describe, is_fatal
from engine.fetch_drain import drain_inline
from engine.fetch_order import FetchOrder, guard_fetches
from engine.fetch_pacing import FetchPacing, Pace, apply_pace
from engine.gc_tuning import tune_gc
from engine.in_flight import InFlight
from engine.kafka_admin import ensure_topics
from engine.kafka_partitions import partition_of
from engine.outputs import Outputs, count_unused
from engine.partition_keeping import PartitionKeeping
from engine.partition_watch import PartitionWatch
from engine.reference import ReferenceReader
from engine.reload import ReloadReport, RuleWatcher, reload_off_the_loop
from engine.rule_sandbox import start_server
from engine.silences import SilenceBook
from engine.state_table import (
    ChangelogWriter,
    TableStore,
    WorkerMonitor,
    outputs_reach_kafka_before_offsets,
)
from models.refdata import ReferenceData
from topics.codec import Event, EventTimePolicy, compact_value, dead_letter, decode
from topics.records import Alert, DeadLetter
from topics.registry import (
    ALERTS,
    DEADLETTER,
    DEFAULT_PARTITIONS,
    EVENT_TOPICS,
    SILENCES,
    TopicSpec,
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


class Worker(PartitionKeeping):
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
        self._reloading = False
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
        self.in_flight = InFlight()
        self.changelog = ChangelogWriter(settings.bootstrap, self.table, settings.partitions)
        self.store = TableStore(self.table, settings.partitions, self.in_flight, self.changelog)
        # Set before the app starts: Faust adds its monitor to the sensors then.
        self.app.monitor = WorkerMonitor(self.store)
        outputs_reach_kafka_before_offsets(self.app, self.store, self.in_flight)
        self.core = ScoringCore(loaded.rules, self.store, on_unused=count_unused)
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
        self.outputs = Outputs(self.alerts, self.deadletters, self.silences, self.in_flight)
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
                self.outputs.report_failure(failure)

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
        self.outputs.send(self.repartition, b"%d" % partition, b"[" + b",".join(entries) + b"]",
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
        self.outputs.report_undecided(self.core.undecided)
        for failure in self.core.take_failures():
            self.outputs.report_failure(failure)
            if failure.index is None or failure.event is None:
                continue
            origin = origins[failure.index]
            topic, partition, offset = origin if origin is not None else (
                failure.event.topic, None, None)
            self.publish_dead_letter(dead_letter(
                topic, compact_value(failure.event), str(failure), key=failure.event.key,
                partition=partition, offset=offset, reason_class="scoring",
                rule_id=failure.rule_id))

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
            self.outputs.report_failure(failure)
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

    async def reload_rules(self) -> None:
        """Take changed rule files into force, off the event loop (``engine.reload``)."""
        if self._reloading or not self.watcher.changes():
            return
        self._reloading = True
        try:
            self.apply_reload(await reload_off_the_loop(self.watcher,
                                                        self.settings.reload_timeout_s))
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
        self.outputs.publish(alerts)

    def publish_dead_letter(self, letter: DeadLetter) -> None:
        self.outputs.dead_letter(letter)


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
