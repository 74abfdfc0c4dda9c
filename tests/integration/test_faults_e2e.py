"""Faults mid-stream on the real broker, each ended by the verifier (``engine.offline.verify``).

Two hours of the simulated hazchem and hotline departments (about 6,000 events, three of them
breaking their schema) are produced at a steady 80 events/s into a fresh consumer group while a
worker scores them: killed with SIGKILL three times and restarted; the broker stopped for 10 s
and started; a second worker joining and the first leaving. Afterwards every event must be
scored or dead-lettered with its reason (none lost), and every alert ``yujing replay`` publishes
for the rules decided at events must have been published, repeated only under its own
``alert_id``. The standalone form, with the figures printed: ``python bench/faults.py``.
"""

from __future__ import annotations

import time

import pytest

from bench.faults import FaultRun, city_events, run_fault
from engine import broker
from tests.integration.kafkakit import REPO

pytestmark = [pytest.mark.broker, pytest.mark.slow]

RATE = 80.0
TIMEOUT = 150.0
"""Seconds to wait for the group to commit every event after the last is produced (a guard
against a hang: it takes about 10)."""


@pytest.fixture(scope="module")
def envelopes():
    return city_events(seed=3, duration="2h")


def check(run: FaultRun) -> None:
    report = run.report
    story = "\n".join([*run.notes, report.model_dump_json(indent=1)])
    assert report.events_in > 5000, story
    assert report.lost == 0, story
    assert report.rekeyed_pending == 0, story
    assert report.scored + report.dead_lettered == report.events_in, story
    # the three events without a position, each with its reason, and nothing else
    assert report.dead_letter_reasons == {"schema": 3}, story
    assert report.dead_letters_replay_scored == 0, story
    events = report.event_rules
    assert events.expected > 50, story
    assert events.missing == 0, story
    assert events.reissued == 0, story  # repeated only under the same alert_id


def test_worker_killed_three_times_mid_stream(kafka, tmp_path, envelopes):
    run = run_fault("kill9", kafka.bootstrap, envelopes, REPO / "rules", tmp_path, RATE,
                    timeout=TIMEOUT)
    assert sum("killed (SIGKILL)" in note for note in run.notes) == 3, run.notes
    check(run)


def test_broker_restarted_mid_stream(kafka, tmp_path, envelopes):
    def restart() -> None:
        broker.stop(kafka)
        time.sleep(10)
        broker.start(kafka, timeout=180)

    run = run_fault("broker", kafka.bootstrap, envelopes, REPO / "rules", tmp_path, RATE,
                    restart_broker=restart, timeout=TIMEOUT)
    check(run)


def test_rebalance_a_worker_joins_then_the_first_leaves(kafka, tmp_path, envelopes):
    run = run_fault("rebalance", kafka.bootstrap, envelopes, REPO / "rules", tmp_path, RATE,
                    timeout=TIMEOUT)
    assert any("worker 2 joined" in note for note in run.notes), run.notes
    check(run)
