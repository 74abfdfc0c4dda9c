"""What the worker's agents and timers do (synchronous: nothing else runs while a batch is
scored): score intake and re-keyed batches, fire deadlines, pace fetches, reload rules, publish.
It is part of ``engine.worker.Worker``, which builds what it uses."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from engine import metrics
from engine.core import Origin, ScoringCore
from engine.failures import is_fatal
from engine.rule_files.reload import ReloadReport, RuleWatcher, reload_off_the_loop
from engine.worker.backlog import BacklogClock, CaughtUp
from engine.worker.faust_internals.consumer import aiokafka_consumer
from engine.worker.faust_internals.fetch_pacing import FetchPacing, Pace, apply_pace
from engine.worker.intake import (
    batch_dead_letters,
    decode_rekeyed,
    forward_record_value,
    forward_records,
    route_intake,
)
from engine.worker.outputs import Outputs
from engine.worker.settings import WorkerSettings
from engine.worker.state import TableStore
from models.refdata import ReferenceData
from topics.codec import Event, EventTimePolicy, compact_value, dead_letter
from topics.records import Alert, DeadLetter

log = logging.getLogger("yujing.worker")


class BatchHandling:
    """The worker's handlers (a part of ``Worker``)."""

    app: Any
    settings: WorkerSettings
    core: ScoringCore
    store: TableStore
    outputs: Outputs
    repartition: Any
    reference: ReferenceData
    watcher: RuleWatcher
    time_policy: EventTimePolicy
    fetch_pacing: FetchPacing
    backlog: BacklogClock
    _local_streams: frozenset[str]
    _local_only: frozenset[str]
    _rekey_here: frozenset[int]
    _assignment: frozenset[Any] | None
    _reloading: bool
    _paced: Pace | None
    _consumed_since_pace: int
    _paced_at: float

    def guarded(self, handle: Callable[[Sequence[Any]], None], batch: Sequence[Any]) -> None:
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
            for letter in batch_dead_letters(batch, exc):
                self.publish_dead_letter(letter)
            if self.backlog.catching_up:
                self._read_backlog(batch, {})

    def handle_intake(self, batch: Sequence[Any]) -> None:
        started = time.perf_counter()
        catching_up = self.backlog.catching_up
        if catching_up:
            self._follow_backlog()
        received = self.outputs.received_at = time.time()
        routed = route_intake(
            batch, bounds=self.time_policy.around(received), now=received,
            partitions=self.settings.partitions, rekey_here=self._rekey_here,
            local_streams=self._local_streams, local_only=self._local_only,
            stream_keys=self.core.stream_keys)
        for letter in routed.dead_letters:
            self.publish_dead_letter(letter)
        for partition, entries in routed.forwards.items():
            for record in forward_records(entries):
                self._send_forward_record(partition, record)
        self._score(routed.local, self._local_streams, routed.origins)
        # What the re-keying topic would have brought back to this worker, in the same order.
        for stream, (events, event_origins) in routed.here.items():
            metrics.EVENTS_REKEYED_HERE.inc(len(events))
            self._score(events, frozenset((stream,)), event_origins)
        self._consumed_since_pace += len(batch)
        metrics.BATCH_SIZE.observe(len(batch))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        for topic, count in routed.consumed.items():
            metrics.EVENTS_CONSUMED.labels(topic).inc(count)
        for topic, count in routed.ahead.items():
            metrics.EVENTS_AHEAD_OF_CLOCK.labels(topic).inc(count)
        newest: dict[str, float] = {}
        for (topic, _), ts in routed.newest.items():
            newest[topic] = max(ts, newest.get(topic, ts))
        now = time.time()
        for topic, ts in newest.items():
            metrics.EVENT_LAG_SECONDS.labels(topic).set(max(0.0, now - ts))
        if catching_up:
            self._read_backlog(batch, routed.newest)
        self.outputs.received_at = None

    def _send_forward_record(self, partition: int, entries: list[bytes]) -> None:
        metrics.EVENTS_REKEYED.inc(len(entries))
        self.outputs.send(self.repartition, b"%d" % partition, forward_record_value(entries),
                          f"a re-keying record of {len(entries)} events", partition=partition)

    def handle_rekeyed(self, batch: Sequence[Any]) -> None:
        catching_up = self.backlog.catching_up
        if catching_up:
            self._follow_backlog()
        newest: dict[tuple[str, int], float] | None = {} if catching_up else None
        by_stream, letters = decode_rekeyed(batch, newest)
        for letter in letters:
            self.publish_dead_letter(letter)
        for stream, (events, origins) in by_stream.items():
            self._score(events, frozenset((stream,)), origins)
        if newest is not None:
            self._read_backlog(batch, newest)

    def _follow_backlog(self) -> None:
        """While the backlog is read, fire the deadlines its event time has passed before the
        next batch is scored, as replay does before each event."""
        at = self.backlog.at(time.time() - self.settings.deadline_lateness_s)
        if at is not None:
            self.publish(self.core.advance(at))
            for failure in self.core.take_failures():
                self.outputs.report_failure(failure)

    def _read_backlog(self, batch: Sequence[Any], newest: dict[tuple[str, int], float]
                      ) -> None:
        positions: dict[tuple[str, int], int] = {}
        for item in batch:
            message = item.message
            read_from = (message.topic, message.partition)
            if message.offset >= positions.get(read_from, -1):
                positions[read_from] = message.offset + 1
        self.report_caught_up(self.backlog.read(positions, newest, len(batch),
                                                time.monotonic()))

    def report_caught_up(self, caught_up: CaughtUp | None) -> None:
        if caught_up is None:
            return
        metrics.CATCHING_UP.set(0)
        for tp in caught_up.let_go:
            log.warning("%s[%d] stood still short of the end offset it had when it was given: "
                        "deadlines no longer wait for it", *tp)
        log.info("caught up: the backlog of the partitions given read (%d records in %.1f s); "
                 "deadlines follow the wall clock again", caught_up.records, caught_up.seconds)

    def _score(self, events: list[Event], streams: frozenset[str],
               origins: list[Origin | None]) -> None:
        repeated = self.core.repeated
        self.publish(self.core.process(events, streams=streams, origins=origins))
        metrics.EVENTS_REPEATED.inc(self.core.repeated - repeated)
        self.outputs.report_undecided(self.core.undecided)
        self.outputs.report_evaluated(self.core.evaluated, self.core.rules)
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
        # Until the backlog of the partitions given is read, deadlines follow its event time
        # (``engine.worker.backlog``): a reading of the key may still wait in it.
        self.report_caught_up(self.backlog.settle(time.monotonic()))
        at = self.backlog.at(now - self.settings.deadline_lateness_s)
        if at is not None:
            self.publish(self.core.advance(at))
        for failure in self.core.take_failures():
            self.outputs.report_failure(failure)
        self._watch_partitions(time.monotonic())
        self._pace_fetches(time.monotonic())

    def sweep(self) -> None:
        """Drop idle state (not while the backlog is read: a key idle by the wall clock may
        have readings waiting in it)."""
        if self.app.rebalancing or self.app.in_recovery or self.backlog.catching_up:
            return
        metrics.STATE_DROPPED.inc(self.core.sweep(time.time()))
        for failure in self.core.take_failures():
            self.outputs.report_failure(failure)

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
        kafka = aiokafka_consumer(self.app.consumer)
        if kafka is not None and apply_pace(kafka, pace):
            self._paced = pace
            metrics.FETCH_MAX_WAIT_SECONDS.set(pace.max_wait_ms / 1000)

    async def reload_rules(self) -> None:
        """Take changed rule files into force, off the event loop (``engine.rule_files.reload``)."""
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

    def publish(self, alerts: list[Alert]) -> None:
        self.outputs.publish(alerts)

    def publish_dead_letter(self, letter: DeadLetter) -> None:
        self.outputs.dead_letter(letter)
