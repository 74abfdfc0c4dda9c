"""Prometheus metrics of the engine processes (names follow Prometheus conventions), and the
HTTP server that exposes them with the processes' health.

Each process exports its own families only: the worker's are in ``WORKER``, dispatch's in
``DISPATCH``, tracking's in ``TRACKING``, and what every process has (broker connectivity,
dead letters, the build) in ``SHARED``; ``serve`` exposes one process's registry with the shared
one and the client library's process and platform collectors. (One registry for all made
``yujing dispatch run`` export the worker's families as zeros: a ``yujing_rules_loaded 0`` there
would page a "no rules loaded" alert.)"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from engine import installed_version

# A `_created` gauge beside every counter and histogram doubles the series for nothing a
# dashboard here reads (rates come from the counters themselves).
disable_created_metrics()

SHARED = CollectorRegistry()
WORKER = CollectorRegistry()
DISPATCH = CollectorRegistry()
TRACKING = CollectorRegistry()

BUILD = Info("yujing_build", "The yujing version this process runs", registry=SHARED)

EVENTS_CONSUMED = Counter(
    "yujing_events_consumed_total", "Department events read from Kafka", ["topic"],
    registry=WORKER)
EVENTS_DEADLETTERED = Counter(
    "yujing_events_deadlettered_total",
    "Records sent to the dead-letter topic, by source topic and reason class (schema, not_json, "
    "event_time, scoring, oversized …: topics.records.DeadLetterClass)", ["topic", "reason"],
    registry=SHARED)
ALERTS_PUBLISHED = Counter(
    "yujing_alerts_published_total", "Alert state changes published",
    ["model", "severity", "state"], registry=WORKER)
ALERTS_SUPPRESSED = Counter(
    "yujing_alerts_suppressed_total",
    "Alert state changes published but marked not to dispatch (silenced or inhibited)",
    ["model", "reason"], registry=WORKER)
BATCH_SECONDS = Histogram(
    "yujing_batch_seconds", "Time to score one batch of events",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
    registry=WORKER)
BATCH_SIZE = Histogram(
    "yujing_batch_events", "Events per batch handed to the scoring core",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000), registry=WORKER)
RULE_EVALUATIONS = Counter(
    "yujing_rule_evaluations_total", "Events a rule scored (its where held for them)",
    ["model"], registry=WORKER)
EVENTS_LATE = Counter(
    "yujing_events_late_total", "Events a model did not use because they came too late",
    ["model"], registry=WORKER)
EVENTS_UNDECIDED = Counter(
    "yujing_events_undecided_total",
    "Events a model saw but could not judge because a field its condition needs was missing "
    "(no verdict: they neither start, restart nor clear an alert)",
    ["model"], registry=WORKER)
READINGS_SKIPPED = Counter(
    "yujing_readings_skipped_total",
    "Events a model did not use for another reason (unusable_value: NaN, an infinity or a "
    "number beyond ±1e15, which a learned model must not learn)", ["model", "reason"],
    registry=WORKER)
RULE_FAILURES = Counter(
    "yujing_rule_failures_total",
    "Times a rule raised: on an event (score, learn: the event was dead-lettered, the other rules "
    "scored it), at a deadline, or while its state was kept (housekeeping)", ["model", "phase"],
    registry=WORKER)
STATE_UNREADABLE = Counter(
    "yujing_state_unreadable_total",
    "Per-key state records that could not be read back (corrupted, or of an incompatible "
    "version): that key's state started afresh", registry=WORKER)
RECORDS_OVERSIZED = Counter(
    "yujing_records_oversized_total",
    "Records yujing was to write that Kafka would refuse (too large): dead-lettered instead, "
    "in a form that fits", ["topic"], registry=WORKER)
RULE_RELOADS = Counter(
    "yujing_rule_reloads_total", "Rule-file reloads, by whether any file was rejected",
    ["result"], registry=WORKER)
STATE_DROPPED = Counter(
    "yujing_state_dropped_total", "Per-key rule states dropped (idle past state_ttl, or of "
    "rules no longer loaded)", registry=WORKER)
RULES_LOADED = Gauge("yujing_rules_loaded", "Rule files in force", registry=WORKER)
RULE_FILE_ERRORS = Gauge("yujing_rule_file_errors", "Rule files rejected at the latest load",
    registry=WORKER)
EVENT_LAG_SECONDS = Gauge(
    "yujing_event_time_lag_seconds", "Wall clock minus the newest event time scored (0 while "
    "that event is ahead of the clock, which max_future_s allows; beyond it events are "
    "dead-lettered with reason event_time)", ["topic"],
    registry=WORKER)

BROKER_CONNECTED = Gauge(
    "yujing_broker_connected",
    "1 while the broker answers a metadata request (asked every 2 s, 2 s to answer), else 0",
    registry=SHARED)
STATE_RECORDS_WRITTEN = Counter(
    "yujing_state_records_written_total",
    "Per-key state records written to the changelog (one per dirty key per flush)",
    registry=WORKER)
STATE_FLUSH_SECONDS = Histogram(
    "yujing_state_flush_seconds",
    "Time spent pickling dirty state for the changelog per flush (before each offset commit, "
    "in slices between which batches are scored; the pauses between them not counted)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5), registry=WORKER)
EVENTS_REPEATED = Counter(
    "yujing_events_repeated_total",
    "Events read again (at least once delivery after a rebalance or restart) and skipped, per "
    "entity that had applied them already", registry=WORKER)
EVENTS_SKIPPED_BY_CONSUMER = Counter(
    "yujing_events_skipped_by_consumer_total",
    "Offsets of a department topic partition the consumer jumped over without delivering them "
    "(seen around rebalances: those events were never scored)", ["topic"], registry=WORKER)
CONSUMER_REWINDS = Counter(
    "yujing_consumer_rewinds_total",
    "Times a partition was read again: the consumer fetched past the next offset to hand on "
    "(seen around rebalances, engine/worker/faust_internals/fetch_order.py), handed nothing "
    "on for 10 s with records waiting, or its commit stood still for 30 s behind what was "
    "handed on (the worker's partition and commit watches)", ["topic"], registry=WORKER)
PARTITIONS_STALLED = Gauge(
    "yujing_partitions_stalled",
    "Assigned partitions with records waiting of which nothing has been handed on for 10 s "
    "(see engine/worker/partition_watch.py): each is read again from there every 10 s until "
    "it moves", registry=WORKER)
CONSUMER_UNANSWERED = Counter(
    "yujing_consumer_unanswered_total",
    "Requests for end offsets that Faust's consumer did not answer within 5 s (asked every "
    "10 s): its thread is stuck and no partition is read", registry=WORKER)
EVENTS_REKEYED = Counter(
    "yujing_events_rekeyed_total",
    "Events forwarded to the re-keying topic (for rules keyed by another field)", registry=WORKER)
EVENTS_REKEYED_HERE = Counter(
    "yujing_events_rekeyed_here_total",
    "Events re-keyed to a key whose re-keying partition this worker reads, scored at once "
    "instead of through the re-keying topic", registry=WORKER)
GC_FULL_PAUSE_SECONDS = Histogram(
    "yujing_gc_full_pause_seconds",
    "Pauses of Python's full (generation 2) garbage collections; nothing runs meanwhile",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0), registry=WORKER)
CATCHING_UP = Gauge(
    "yujing_catching_up",
    "1 while the worker reads the backlog its partitions had when it was given them (deadlines "
    "follow the event time read meanwhile, engine/worker/backlog.py), 0 once it has",
    registry=WORKER)
EVENTS_AHEAD_OF_CLOCK = Counter(
    "yujing_events_ahead_of_clock_total",
    "Events dated after the worker's wall clock yet within --max-future (scored; a sender's "
    "clock running fast): yujing_event_time_lag_seconds reads 0 for them, not a negative lag",
    ["topic"], registry=WORKER)
STATE_KEYS = Gauge(
    "yujing_state_keys", "Entities (keys) whose rule state this worker holds", registry=WORKER)
CONSUMER_LAG_RECORDS = Gauge(
    "yujing_consumer_lag_records",
    "Records of the worker's assigned partitions not yet handed on to scoring (end offset minus "
    "position, summed over the topic's partitions; read every 10 s)", ["topic"], registry=WORKER)
PARTITIONS_ASSIGNED = Gauge(
    "yujing_partitions_assigned", "Partitions of the topic assigned to this worker", ["topic"],
    registry=WORKER)
ALERT_LATENCY_SECONDS = Histogram(
    "yujing_alert_latency_seconds",
    "From the event that raised an alert to the alert's publication: since the event's own time "
    "(since=event_time: includes the department's delay in sending it) or since the worker "
    "received its batch (since=receipt: the engine's own share)", ["since"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
    registry=WORKER)
FETCH_MAX_WAIT_SECONDS = Gauge(
    "yujing_fetch_max_wait_seconds",
    "How long the broker may hold the worker's fetches to gather records (1.5 s, Faust's, "
    "while events are few: a fetch returns at its first record)", registry=WORKER)


def worker_series_from_start(topics: Iterable[str], reasons: Iterable[str],
                             models: Iterable[tuple[str, Iterable[str]]],
                             max_wait_s: float) -> None:
    """Create the worker's labelled counters at 0 for every topic it reads and every rule in
    force (``models``: each rule's id and the severities it can publish), so a rate over them
    has a series from start-up. A counter whose series appears with its first increment
    hides that increment from ``rate`` and ``increase``: a model's first alert would not show
    on a dashboard."""
    reasons = tuple(reasons)
    for model, severities in models:
        RULE_EVALUATIONS.labels(model)
        EVENTS_LATE.labels(model)
        EVENTS_UNDECIDED.labels(model)
        # Scoring is where a rule fails, if it does: the other phases get a series when used.
        RULE_FAILURES.labels(model, "score")
        for severity in severities:
            for state in ("firing", "escalated", "resolved"):
                ALERTS_PUBLISHED.labels(model, severity, state)
        for reason in ("silenced", "inhibited"):
            ALERTS_SUPPRESSED.labels(model, reason)
    for topic in topics:
        EVENTS_CONSUMED.labels(topic)
        EVENTS_AHEAD_OF_CLOCK.labels(topic)
        for reason in reasons:
            EVENTS_DEADLETTERED.labels(topic, reason)
    for result in ("ok", "rejected"):
        RULE_RELOADS.labels(result)
    for since in ("event_time", "receipt"):
        ALERT_LATENCY_SECONDS.labels(since)
    FETCH_MAX_WAIT_SECONDS.set(max_wait_s)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes are not worth a log line each."""


class _Together(Collector):
    """The families of several registries as one (what one process exports)."""

    def __init__(self, *registries: CollectorRegistry) -> None:
        self.registries = registries

    def collect(self) -> Iterable[Any]:
        for registry in self.registries:
            yield from registry.collect()


class _Readiness(Collector):
    """``yujing_ready``: what ``/readyz`` says, as a sample an alerting rule can read."""

    def __init__(self, not_ready: Callable[[], str | None]) -> None:
        self.not_ready = not_ready

    def collect(self) -> Iterable[Any]:
        yield GaugeMetricFamily(
            "yujing_ready", "1 while the process is ready (broker reachable and, for a worker, "
            "partitions assigned and reference data read: what /readyz answers 200 for), else 0",
            value=0.0 if self.not_ready() else 1.0)


def exported(registry: CollectorRegistry,
             not_ready: Callable[[], str | None] = lambda: None) -> CollectorRegistry:
    """What a process whose own families are in ``registry`` exports: those, the shared
    families, its readiness, and the client library's process, platform and garbage-collector
    metrics."""
    together = CollectorRegistry(auto_describe=False)
    together.register(_Together(REGISTRY, SHARED, registry))
    together.register(_Readiness(not_ready))
    return together


def sample_value(name: str, labels: dict[str, str] | None = None) -> float | None:
    """A sample's value in whichever process registry holds it (None when none does)."""
    for registry in (SHARED, WORKER, DISPATCH, TRACKING, REGISTRY):
        value = registry.get_sample_value(name, labels or {})
        if value is not None:
            return value
    return None


def health_app(not_ready: Callable[[], str | None],
               registry: CollectorRegistry = WORKER) -> Callable[..., Iterable[bytes]]:
    """The WSGI app of the metrics port: ``/healthz`` answers 200 while the process runs,
    ``/readyz`` 200 while ``not_ready()`` has no reason and 503 with the reason otherwise,
    anything else the metrics of ``registry`` (with ``exported``'s)."""
    metrics_app = make_wsgi_app(exported(registry, not_ready))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path not in ("/healthz", "/readyz"):
            return metrics_app(environ, start_response)
        reason = not_ready() if path == "/readyz" else None
        status = "503 Service Unavailable" if reason else "200 OK"
        body = f"{reason or ('ready' if path == '/readyz' else 'alive')}\n".encode()
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                                ("Content-Length", str(len(body)))])
        return [body]

    return app


def serve(port: int, not_ready: Callable[[], str | None] = lambda: None,
          registry: CollectorRegistry = WORKER, host: str = "127.0.0.1") -> WSGIServer | None:
    """Expose /metrics (``registry``'s families, see ``exported``), /healthz and /readyz on
    ``host``:``port`` (port 0 turns it off) from a daemon thread."""
    if not port:
        return None
    BUILD.info({"version": installed_version() or "unknown"})
    server = make_server(host, port, health_app(not_ready, registry), _Server,
                         handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="yujing-metrics", daemon=True).start()
    return server

