"""Prometheus metrics of the engine processes (names follow Prometheus conventions), and the
HTTP server that exposes them with the processes' health."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import Counter, Gauge, Histogram, make_wsgi_app

EVENTS_CONSUMED = Counter(
    "yujing_events_consumed_total", "Department events read from Kafka", ["topic"])
EVENTS_DEADLETTERED = Counter(
    "yujing_events_deadlettered_total",
    "Records sent to the dead-letter topic, by source topic and reason class (schema, not_json, "
    "event_time, scoring, oversized …: topics.records.DeadLetterClass)", ["topic", "reason"])
ALERTS_PUBLISHED = Counter(
    "yujing_alerts_published_total", "Alert state changes published",
    ["model", "severity", "state"])
ALERTS_SUPPRESSED = Counter(
    "yujing_alerts_suppressed_total",
    "Alert state changes published but marked not to dispatch (silenced or inhibited)",
    ["model", "reason"])
BATCH_SECONDS = Histogram(
    "yujing_batch_seconds", "Time to score one batch of events",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
BATCH_SIZE = Histogram(
    "yujing_batch_events", "Events per batch handed to the scoring core",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000))
EVENTS_LATE = Counter(
    "yujing_events_late_total", "Events a model did not use because they came too late",
    ["model"])
EVENTS_UNDECIDED = Counter(
    "yujing_events_undecided_total",
    "Events a model saw but could not judge because a field its condition needs was missing "
    "(no verdict: they neither start, restart nor clear an alert)",
    ["model"])
READINGS_SKIPPED = Counter(
    "yujing_readings_skipped_total",
    "Events a model did not use for another reason (unusable_value: NaN, an infinity or a "
    "number beyond ±1e15, which a learned model must not learn)", ["model", "reason"])
RULE_FAILURES = Counter(
    "yujing_rule_failures_total",
    "Times a rule raised: on an event (score, learn: the event was dead-lettered, the other rules "
    "scored it), at a deadline, or while its state was kept (housekeeping)", ["model", "phase"])
STATE_UNREADABLE = Counter(
    "yujing_state_unreadable_total",
    "Per-key state records that could not be read back (corrupted, or of an incompatible "
    "version): that key's state started afresh")
RECORDS_OVERSIZED = Counter(
    "yujing_records_oversized_total",
    "Records yujing was to write that Kafka would refuse (too large): dead-lettered instead, "
    "in a form that fits", ["topic"])
RULE_RELOADS = Counter(
    "yujing_rule_reloads_total", "Rule-file reloads, by whether any file was rejected",
    ["result"])
STATE_DROPPED = Counter(
    "yujing_state_dropped_total", "Per-key rule states dropped (idle past state_ttl, or of "
    "rules no longer loaded)")
RULES_LOADED = Gauge("yujing_rules_loaded", "Rule files in force")
RULE_FILE_ERRORS = Gauge("yujing_rule_file_errors", "Rule files rejected at the latest load")
EVENT_LAG_SECONDS = Gauge(
    "yujing_event_time_lag_seconds", "Wall clock minus the newest event time scored", ["topic"])

BROKER_CONNECTED = Gauge(
    "yujing_broker_connected",
    "1 while the broker answers a metadata request (asked every 2 s, 2 s to answer), else 0")
STATE_RECORDS_WRITTEN = Counter(
    "yujing_state_records_written_total",
    "Per-key state records written to the changelog (one per dirty key per flush)")
STATE_FLUSH_SECONDS = Histogram(
    "yujing_state_flush_seconds",
    "Time spent pickling dirty state for the changelog per flush (before each offset commit, "
    "in slices between which batches are scored; the pauses between them not counted)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
EVENTS_REPEATED = Counter(
    "yujing_events_repeated_total",
    "Events read again (at least once delivery after a rebalance or restart) and skipped, per "
    "entity that had applied them already")
EVENTS_SKIPPED_BY_CONSUMER = Counter(
    "yujing_events_skipped_by_consumer_total",
    "Offsets of a department topic partition the consumer jumped over without delivering them "
    "(seen around rebalances: those events were never scored)", ["topic"])
CONSUMER_REWINDS = Counter(
    "yujing_consumer_rewinds_total",
    "Times a partition was read again: the consumer fetched past the next offset to hand on "
    "(seen around rebalances, engine/worker/faust_internals/fetch_order.py), handed nothing "
    "on for 10 s with records waiting, or its commit stood still for 30 s behind what was "
    "handed on (the worker's partition and commit watches)", ["topic"])
PARTITIONS_STALLED = Gauge(
    "yujing_partitions_stalled",
    "Assigned partitions with records waiting of which nothing has been handed on for 10 s "
    "(see engine/worker/partition_watch.py): each is read again from there every 10 s until "
    "it moves")
CONSUMER_UNANSWERED = Counter(
    "yujing_consumer_unanswered_total",
    "Requests for end offsets that Faust's consumer did not answer within 5 s (asked every "
    "10 s): its thread is stuck and no partition is read")
EVENTS_REKEYED = Counter(
    "yujing_events_rekeyed_total",
    "Events forwarded to the re-keying topic (for rules keyed by another field)")
EVENTS_REKEYED_HERE = Counter(
    "yujing_events_rekeyed_here_total",
    "Events re-keyed to a key whose re-keying partition this worker reads, scored at once "
    "instead of through the re-keying topic")
GC_FULL_PAUSE_SECONDS = Histogram(
    "yujing_gc_full_pause_seconds",
    "Pauses of Python's full (generation 2) garbage collections; nothing runs meanwhile",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
CATCHING_UP = Gauge(
    "yujing_catching_up",
    "1 while the worker reads the backlog its partitions had when it was given them (deadlines "
    "follow the event time read meanwhile, engine/worker/backlog.py), 0 once it has")
FETCH_MAX_WAIT_SECONDS = Gauge(
    "yujing_fetch_max_wait_seconds",
    "How long the broker may hold the worker's fetches to gather records (1.5 s, Faust's, "
    "while events are few: a fetch returns at its first record)")


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes are not worth a log line each."""


def health_app(not_ready: Callable[[], str | None]) -> Callable[..., Iterable[bytes]]:
    """The WSGI app of the metrics port: ``/healthz`` answers 200 while the process runs,
    ``/readyz`` 200 while ``not_ready()`` has no reason and 503 with the reason otherwise,
    anything else the metrics."""
    metrics_app = make_wsgi_app()

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


def serve(port: int, not_ready: Callable[[], str | None] = lambda: None) -> None:
    """Expose /metrics, /healthz and /readyz on ``port`` (0 turns it off) from a daemon
    thread."""
    if not port:
        return
    server = make_server("0.0.0.0", port, health_app(not_ready), _Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="yujing-metrics", daemon=True).start()
