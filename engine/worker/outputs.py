"""What a worker writes and counts: alerts, dead letters and re-keyed records — never one
Kafka refuses — and the metrics of what its rules could not use or judge.

Faust's producer raises inside its own task when handed a record over its ``max.request.size``,
which stops the worker, and a restarted worker meets the same input again. So every send is
checked against ``topics.bounds.fits`` first, and a record that does not fit — or one the broker
refuses for what it is (``engine.worker.in_flight``) — is dead-lettered in a form that fits (a
prefix, its size and hash), counted in ``yujing_records_oversized_total`` and logged once per topic.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from engine import metrics
from engine.failures import ScoringFailure, describe
from engine.silences import SilenceBook
from engine.worker.in_flight import InFlight, Record
from models.base import Reading, Verdict
from topics.bounds import MAX_RECORD_BYTES, fits
from topics.codec import dead_letter
from topics.records import Alert, DeadLetter

log = logging.getLogger("yujing.worker")

FAILURE_LOG_EVERY_S = 60.0
"""A failing rule is logged at most this often (every failure is counted)."""


class Outputs:
    """Sends a worker's records through Faust's topics, with what each send's delivery must
    be waited for in ``in_flight``."""

    def __init__(self, alerts: Any, deadletters: Any, silences: SilenceBook,
                 in_flight: InFlight) -> None:
        self.alerts = alerts
        self.deadletters = deadletters
        self.silences = silences
        self.in_flight = in_flight
        in_flight.on_refused = self.refused
        self._oversize_logged: set[str] = set()
        self._failure_logged: dict[str, float] = {}
        self.received_at: float | None = None
        """When the batch being scored was received (None outside a batch: clock alerts)."""
        self._undecided_reported: dict[str, int] = {}
        self._evaluated_reported: dict[str, int] = {}
        """The core's undecided counts as last added to ``yujing_events_undecided_total``."""

    def publish(self, alerts: list[Alert]) -> None:
        if not alerts:
            return
        now = time.time()
        self.silences.apply(alerts, now)
        for alert in alerts:
            alert.emitted_at = now
            self.send(self.alerts, alert.alert_id.encode(), alert.model_dump_json().encode(),
                      f"the {alert.state} alert {alert.alert_id} of {alert.model_id}")
            metrics.ALERTS_PUBLISHED.labels(alert.model_id, alert.severity, alert.state).inc()
            if alert.state == "firing":
                self._observe_latency(alert, now)
            if alert.silenced_by:
                metrics.ALERTS_SUPPRESSED.labels(alert.model_id, "silenced").inc()
            elif alert.inhibited_by:
                metrics.ALERTS_SUPPRESSED.labels(alert.model_id, "inhibited").inc()

    def _observe_latency(self, alert: Alert, now: float) -> None:
        # Raised by an event of this batch: its time is the alert's last_ts. An alert raised by
        # the clock (an absence, a window emptying) has no event to measure from.
        if self.received_at is None:
            return
        metrics.ALERT_LATENCY_SECONDS.labels("event_time").observe(max(0.0, now - alert.last_ts))
        metrics.ALERT_LATENCY_SECONDS.labels("receipt").observe(max(0.0, now - self.received_at))

    def dead_letter(self, letter: DeadLetter) -> None:
        metrics.EVENTS_DEADLETTERED.labels(letter.source_topic, letter.reason_class).inc()
        self.send(self.deadletters, letter.source_topic.encode(),
                  letter.model_dump_json().encode(), "a dead letter")

    def send(self, channel: Any, key: bytes, value: bytes, what: str,
             partition: int | None = None) -> None:
        """Hand a record to Faust's producer, unless Kafka would refuse it."""
        topic = channel.get_topic_name()
        if not fits(key, value):
            size = len(key) + len(value)
            self._oversized(topic, Record(topic, key, value),
                            f"{what} is {size} bytes, more than the {MAX_RECORD_BYTES} a Kafka "
                            "record may have")
            return
        self.in_flight.add(channel.send_soon(key=key, value=value, partition=partition),
                           Record(topic, key, value))

    def refused(self, record: Record | None, exc: BaseException) -> None:
        """A send the broker refused for what the record is (the topic's own limit may be
        lower than ``MAX_RECORD_BYTES``): dead-letter it, so the commit can go on."""
        topic = "(state changelog)" if record is None else record.topic
        self._oversized(topic, record, f"the broker refused it: {describe(exc)}")

    def _oversized(self, topic: str, record: Record | None, reason: str) -> None:
        metrics.RECORDS_OVERSIZED.labels(topic).inc()
        if topic not in self._oversize_logged:
            self._oversize_logged.add(topic)
            log.error("a record for %s was not written: %s; dead-lettered instead (logged once "
                      "per topic; yujing_records_oversized_total counts them)", topic, reason)
        if record is not None:
            self.dead_letter(dead_letter(topic, record.value, reason, key=record.key,
                                         reason_class="oversized"))

    def report_failure(self, failure: ScoringFailure) -> None:
        """Count a rule's failure; log it at most once a minute per rule (a rule that fails on
        every event would otherwise fill the log)."""
        metrics.RULE_FAILURES.labels(failure.rule_id, failure.phase).inc()
        now = time.monotonic()
        if now - self._failure_logged.get(failure.rule_id, -1e9) >= FAILURE_LOG_EVERY_S:
            self._failure_logged[failure.rule_id] = now
            log.error("%s (yujing_rule_failures_total counts every one; logged once a minute "
                      "per rule)", failure)

    def report_evaluated(self, counts: dict[str, int], rules: dict[str, Any]) -> None:
        """Add the core's evaluation counts since the last batch to
        ``yujing_rule_evaluations_total`` (``counts`` by state key, ``rules`` the core's)."""
        _add_since_reported(counts, self._evaluated_reported, metrics.RULE_EVALUATIONS,
                            lambda state_key: rules[state_key].spec.id
                            if state_key in rules else None)

    def report_undecided(self, counts: dict[str, int]) -> None:
        """Add what the core counted since the last batch to ``yujing_events_undecided_total``:
        once a batch, because events lacking an optional field can be most of a model's input
        and each increment of a Prometheus counter takes a lock."""
        _add_since_reported(counts, self._undecided_reported, metrics.EVENTS_UNDECIDED,
                            lambda rule_id: rule_id)


def _add_since_reported(counts: dict[str, int], reported: dict[str, int], counter: Any,
                        model_of: Any) -> None:
    """Add to ``counter{model}`` what ``counts`` (running totals, by key) gained since the totals
    in ``reported``, which are brought up to date; a key ``model_of`` names None is left out."""
    for key, count in counts.items():
        done = reported.get(key, 0)
        if count != done:
            model = model_of(key)
            if model is not None:
                counter.labels(model).inc(count - done)
                reported[key] = count


def count_unused(rule: Any, reading: Reading) -> None:
    """The core's ``on_unused``: count a late or skipped reading by rule (and skip reason)."""
    if reading.verdict is Verdict.LATE:
        metrics.EVENTS_LATE.labels(rule.id).inc()
    else:
        metrics.READINGS_SKIPPED.labels(rule.id, str(reading.evidence.get("skipped"))).inc()
