"""One broker of three killed mid-stream: nothing acknowledged is lost.

A cluster of three KRaft nodes on loopback; yujing's topics created with replication factor 3
and ``min.insync.replicas`` 2. Two hours of the simulated hazchem and hotline departments are
produced (``acks=all``) at a steady rate into a fresh consumer group while a worker scores
them, bootstrapped with all three nodes; while the second half is being produced the node that
leads ``__consumer_offsets`` (every group's coordinator) is killed with SIGKILL and not started
again. Afterwards the verifier (``engine.offline.verify``, through ``bench.faults``) must find
every event scored or dead-lettered and every alert replay publishes for the rules decided at
events published.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from bench.faults import city_events, run_fault
from engine.broker_cluster import ClusterConfig, kill_node, start_cluster, stop_cluster
from engine.kafka_client.admin import ensure_topics
from tests.integration.kafkakit import REPO, free_ports
from topics.registry import ALL_TOPICS

pytestmark = [pytest.mark.broker, pytest.mark.slow]

RATE = 80.0
TIMEOUT = 180.0
"""Seconds to wait for the group to commit every event after the last is produced (a guard
against a hang)."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterConfig]:
    cfg = ClusterConfig(nodes=3, port=free_ports(1)[0], home=tmp_path_factory.mktemp("cluster"))
    try:
        start_cluster(cfg, timeout=240)
        yield cfg
    finally:
        stop_cluster(cfg)


async def describe(bootstrap: str, names: list[str]) -> list[dict]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        return await admin.describe_topics(names)
    finally:
        await admin.close()


def described_everywhere(bootstrap: str, names: list[str], timeout: float = 60.0
                         ) -> list[dict]:
    """The topics as described once every one is known to the node answering, its replicas all
    in sync: the nodes learn a new topic from the controller one after the other, and a client
    asking a node that has not yet hears 'unknown topic' (clients retry; so does this, for at
    most ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        described = asyncio.run(describe(bootstrap, names))
        settled = all(t["error_code"] == 0 and all(
            len(p["isr"]) == len(p["replicas"]) for p in t["partitions"]) for t in described)
        if settled or time.monotonic() > deadline:
            return described
        time.sleep(0.5)


def test_topics_replicated_three_times(cluster):
    asyncio.run(ensure_topics(cluster.bootstrap, replication=3, min_insync=2))
    described = described_everywhere(cluster.bootstrap, [t.name for t in ALL_TOPICS.values()])
    assert len(described) == len(ALL_TOPICS)
    for topic in described:
        assert topic["error_code"] == 0, topic
        for partition in topic["partitions"]:
            assert sorted(partition["replicas"]) == [1, 2, 3], topic["topic"]
            assert sorted(partition["isr"]) == [1, 2, 3], topic["topic"]


def test_one_node_of_three_killed_mid_stream(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("YUJING_REPLICATION_FACTOR", "3")  # the worker's re-keying topic too
    asyncio.run(ensure_topics(cluster.bootstrap, replication=3, min_insync=2))
    envelopes = city_events(seed=3, duration="2h")
    killed: list[str] = []

    def kill_the_coordinator() -> None:
        time.sleep(5.0)  # the second half is being produced
        offsets = asyncio.run(describe(cluster.bootstrap, ["__consumer_offsets"]))
        leader = offsets[0]["partitions"][0]["leader"]
        pid = kill_node(cluster, leader)
        killed.append(f"{time.strftime('%H:%M:%S')} node {leader} (pid {pid}) killed")

    killer = threading.Thread(target=kill_the_coordinator, daemon=True)
    run = run_fault("broker", cluster.bootstrap, envelopes, REPO / "rules", tmp_path, RATE,
                    restart_broker=killer.start, timeout=TIMEOUT)
    killer.join(60)
    report = run.report
    story = "\n".join([*killed, *run.notes, report.model_dump_json(indent=1)])
    assert len(killed) == 1 and "None" not in killed[0], story
    assert report.events_in > 5000, story
    assert report.lost == 0, story
    assert report.rekeyed_pending == 0, story
    assert report.scored + report.dead_lettered == report.events_in, story
    assert report.dead_letter_reasons == {"schema": 3}, story
    events = report.event_rules
    assert events.expected > 50, story
    assert events.missing == 0, story
    assert events.reissued == 0, story
    # the two nodes left have every partition, with an ISR of two
    left = asyncio.run(describe(cluster.bootstrap, [t.name for t in ALL_TOPICS.values()]))
    for topic in left:
        for partition in topic["partitions"]:
            assert partition["leader"] >= 0 and len(partition["isr"]) == 2, topic["topic"]
    print("\n".join([*killed, *run.notes, report.summary()]))
