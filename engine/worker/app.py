"""The Faust worker: department topics in, the scoring core in the middle, alerts out.

Agents only move data. Events reach the core in batches (``take_ready``: as soon as the fetched
events are in, not on a timer), alerts and dead letters leave through the producer's buffer
(``send_soon``, no round trip per message), and per-key state lives in one changelog-backed
table keyed exactly like the source topics, so a restarted or rebalanced worker recovers the
state of the partitions it is given. Events keyed otherwise than their entity are re-keyed
(``engine.worker.intake``).

The app is built in Faust's order: the app, its table, its topics, then the agents and timers
that read them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, get_args

import faust

from engine import metrics
from engine.core import ScoringCore
from engine.kafka_client import connection
from engine.kafka_client.admin import check_topics, ensure_topics, replication_factor
from engine.kafka_client.probe import PROBE_INTERVAL_S, BrokerProbe
from engine.kafka_client.reference import ReferenceReader
from engine.log_format import LogFormat
from engine.log_format import apply as apply_log_format
from engine.log_repeats import quiet_repeats
from engine.rule_files.reload import RuleWatcher
from engine.rule_files.sandbox import start_server
from engine.silences import SilenceBook
from engine.worker.backlog import BacklogClock
from engine.worker.faust_internals.batching import take_ready
from engine.worker.faust_internals.commit import (
    WorkerMonitor,
    outputs_reach_kafka_before_offsets,
)
from engine.worker.faust_internals.fetch_drain import drain_inline
from engine.worker.faust_internals.fetch_order import FetchOrder, guard_fetches
from engine.worker.faust_internals.fetch_pacing import FAUST_MAX_WAIT_MS, FetchPacing, Pace
from engine.worker.faust_internals.producer import idempotent_outputs
from engine.worker.faust_internals.versions import check_versions
from engine.worker.gc_tuning import tune_gc
from engine.worker.handling import BatchHandling
from engine.worker.in_flight import InFlight
from engine.worker.outputs import Outputs, count_unused
from engine.worker.partition_keeping import PartitionKeeping
from engine.worker.partition_watch import PartitionWatch
from engine.worker.settings import (
    COMMIT_STILL_S,
    END_OFFSETS_INTERVAL_S,
    STATE_TABLE,
    NoRulesError,
    WorkerSettings,
)
from engine.worker.state import ChangelogWriter, TableStore
from models.refdata import ReferenceData
from topics.codec import EventTimePolicy
from topics.records import DeadLetter, DeadLetterClass
from topics.registry import ALERTS, DEADLETTER, EVENT_TOPICS, SILENCES, TopicSpec

log = logging.getLogger("yujing.worker")


def build_app(settings: WorkerSettings) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        broker_credentials=connection.current().faust_credentials(),
        store="memory://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=replication_factor(),
        # Every output waits for all in-sync replicas (Faust's default, said here because a
        # lost broker must not take acknowledged alerts with it); ``idempotent_outputs`` adds
        # idempotence.
        producer_acks=-1,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        consumer_auto_offset_reset="earliest",
        producer_linger=settings.producer_linger_s,
        broker_commit_interval=settings.commit_interval_s,
        # Faust's consumer stops reading while a commit it starts every N acknowledged
        # messages runs (waiting for the outputs): commits come from the interval only.
        broker_commit_every=1 << 62,
        web_enabled=False,
        value_serializer="raw",
        key_serializer="raw",
        stream_buffer_maxsize=settings.stream_buffer,
    )
    idempotent_outputs(app)
    return app


class Worker(BatchHandling, PartitionKeeping):
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
        metrics.worker_series_from_start(EVENT_TOPICS, get_args(DeadLetterClass),
                                         ((rule.id, rule.severities)
                                          for rule in loaded.rules),
                                         FAUST_MAX_WAIT_MS / 1000)
        metrics.RULES_LOADED.set(len(loaded.rules))
        metrics.RULE_FILE_ERRORS.set(len(loaded.errors))

        self.app = build_app(settings)
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
        self.reference_reader = ReferenceReader(settings.bootstrap, self.reference,
                                                self.silences)
        self.broker_probe = BrokerProbe(settings.bootstrap, also=self.not_ready_here)
        self.commit_watch = PartitionWatch(after_s=COMMIT_STILL_S)
        """Partitions whose committed offset stands still behind what was handed on."""
        self._repartition_topic = settings.repartition_topic
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
        self.backlog = BacklogClock()
        guard_fetches(self.app.consumer, self.fetch_order, self._read_topics)
        drain_inline(self.app.consumer)  # no tasks per message fetched

        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.event_topics = self.app.topic(*EVENT_TOPICS, **raw)
        self.repartition = self.app.topic(self._repartition_topic,
                                          partitions=settings.partitions, internal=True, **raw)
        self.alerts = self.app.topic(ALERTS.name, **raw)
        self.deadletters = self.app.topic(DEADLETTER.name, **raw)
        self.outputs = Outputs(self.alerts, self.deadletters, self.silences, self.in_flight)
        self._define_agents()
        self._define_timers()

        # Faust holds stream processing whenever more than 100 messages wait in its producer
        # buffer; a batch of a thousand events writes more than that (alerts, re-keyed events,
        # state), so let the buffer hold a few batches before it throttles.
        self.app.producer.buffer.max_messages = max(4 * settings.batch_max, 1000)
        self._connect_signals()

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
        self.backlog.assigned([(tp.topic, tp.partition) for tp in assignment or ()
                               if tp.topic in self._read_topics], time.monotonic())
        metrics.CATCHING_UP.set(int(self.backlog.catching_up))

    def not_ready_here(self) -> str | None:
        """Why the worker is not ready though the broker answers: it holds no partition, or
        has not taken the ones of the latest rebalance yet, or has not read the reference data
        and silences to their end (zones and lists its rules judge by)."""
        if not (self._assignment and self.app.consumer.assignment()):
            return "no partitions assigned"
        if not self.reference_reader.caught_up:
            return "reference data and silences not read to their end yet"
        return None

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

    def _define_timers(self) -> None:
        settings = self.settings
        reader = self.reference_reader

        @self.app.task
        async def changelog_writer() -> None:
            await self.changelog.start()

        @self.app.task
        async def reference() -> None:
            await reader.run()

        @self.app.timer(interval=PROBE_INTERVAL_S)
        async def broker_probe() -> None:
            await self.broker_probe.check()

        @self.app.timer(interval=settings.tick_interval_s)
        async def deadlines() -> None:
            self.handle_tick(time.time())

        @self.app.task
        async def backlog_ends() -> None:
            # Not in the tick: the broker's answer can take longer than a tick. Deadlines wait
            # for it, so the loop must outlive whatever one attempt meets.
            while True:
                try:
                    await self.measure_backlog()
                except Exception:
                    log.exception("the end offsets of the partitions given could not be asked")
                await asyncio.sleep(settings.tick_interval_s)

        @self.app.timer(interval=END_OFFSETS_INTERVAL_S)
        async def end_offsets() -> None:
            await self.poll_end_offsets()

        if settings.reload_interval_s:
            @self.app.timer(interval=settings.reload_interval_s)
            async def reload_rules() -> None:
                await self.reload_rules()

        @self.app.timer(interval=settings.sweep_interval_s)
        async def sweep() -> None:
            self.sweep()

    def _connect_signals(self) -> None:
        settings = self.settings

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
            # (``EntityState.origins``).
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


def run_worker(settings: WorkerSettings, loglevel: str = "info",
               log_format: LogFormat = "text") -> None:
    """Run a worker in this process until it is stopped (SIGTERM / Ctrl-C)."""
    check_versions()
    from faust.worker import Worker as FaustWorker

    class QuietLibrariesWorker(FaustWorker):
        def on_setup_root_logger(self, logger: Any, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            # Faust and aiokafka format a debug line for every message sent when their
            # loggers let debug through: a few percent of the worker's time, for nothing.
            for name in ("aiokafka", "faust", "mode"):
                logging.getLogger(name).setLevel(max(level, logging.INFO))
            apply_log_format(log_format)  # Faust's handlers, yujing's one format
            quiet_repeats()

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The re-keying topic exists, with a leader, before the consumer joins its group: a topic
    # Faust creates while it starts can be missing from the first assignment, and the consumer
    # then only sees it at its next metadata refresh (minutes later).
    asyncio.run(ensure_topics(settings.bootstrap, [TopicSpec(
        settings.repartition_topic, "key", DeadLetter, "event",
        partitions=settings.partitions, description="re-keyed events"), SILENCES]))
    for problem in asyncio.run(check_topics(settings.bootstrap)):
        log.warning("topic %s (yujing create-topics --fix)", problem)
    worker = Worker(settings)
    if settings.reload_interval_s:
        start_server()  # the child processes that load changed rule files fork from it
    tune_gc()
    metrics.serve(settings.metrics_port, worker.broker_probe.not_ready, metrics.WORKER,
                  host=settings.metrics_host)
    QuietLibrariesWorker(worker.app, loglevel=loglevel, quiet=True).execute_from_commandline()
