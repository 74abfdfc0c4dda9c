"""A cluster of N combined broker+controller nodes (KRaft) on loopback, from the same jars as
``engine.broker``'s single node.

Node ``i`` (from 1) listens on ``port + 2(i-1)`` and its controller on the port after it, keeps
its data under ``home/node-i``, and votes in the quorum of all N; every node is formatted with
the one cluster id kept in ``home/cluster.id``. With three nodes or more the internal topics are
replicated three times and ``min.insync.replicas`` is 2, so one node may die without a write
acknowledged by all in-sync replicas being lost.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import BaseModel, Field

from engine import broker
from engine.broker import BrokerConfig, BrokerStatus


class ClusterConfig(BaseModel):
    nodes: int = Field(default=3, ge=1)
    host: str = "127.0.0.1"
    port: int = 9092
    """The first node's client port; node i's is ``port + 2(i-1)``, its controller's the next."""
    home: Path = Field(
        default_factory=lambda: Path(os.environ.get("YUJING_HOME") or Path.cwd() / ".yujing/kafka")
    )
    heap: str = "448m"  # three JVMs on a small machine

    @property
    def replication(self) -> int:
        return min(3, self.nodes)

    def node(self, node_id: int) -> BrokerConfig:
        """The configuration of node ``node_id`` (1 to ``nodes``)."""
        if not 1 <= node_id <= self.nodes:
            raise ValueError(f"node {node_id}: the cluster has nodes 1 to {self.nodes}")
        port = self.port + 2 * (node_id - 1)
        voters = ",".join(f"{i}@{self.host}:{self.port + 2 * (i - 1) + 1}"
                          for i in range(1, self.nodes + 1))
        return BrokerConfig(host=self.host, port=port, controller_port=port + 1,
                            home=self.home.absolute() / f"node-{node_id}", heap=self.heap,
                            node_id=node_id, voters=voters, replication=self.replication)

    @property
    def members(self) -> list[BrokerConfig]:
        return [self.node(i) for i in range(1, self.nodes + 1)]

    @property
    def bootstrap(self) -> str:
        """Every node's address: a client that finds one dead asks the next."""
        return ",".join(node.bootstrap for node in self.members)


def _share_cluster_id(cfg: ClusterConfig) -> None:
    """Write the cluster's id into every node's home, where ``broker`` formats storage from."""
    cfg.home.mkdir(parents=True, exist_ok=True)
    id_file = cfg.home / "cluster.id"
    if not id_file.is_file():
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        id_file.write_text(("A" + cid[1:] if cid[0] == "-" else cid) + "\n")
    for node in cfg.members:
        node.home.mkdir(parents=True, exist_ok=True)
        (node.home / "cluster.id").write_text(id_file.read_text())


def start_cluster(cfg: ClusterConfig, timeout: float = 180.0) -> list[int]:
    """Start every node not running (all at once: none answers before a quorum of voters runs)
    and return their pids once each answers."""
    deadline = time.monotonic() + timeout
    _share_cluster_id(cfg)
    broker.ensure_jars(cfg.node(1))  # once, before the nodes start in parallel
    pids: list[int] = []
    for node in cfg.members:
        running = broker.status(node)
        pids.append(running.pid if running.running and running.pid else broker.launch(node))
    return [broker.wait_answering(node, pid, deadline)
            for node, pid in zip(cfg.members, pids, strict=True)]


def start_node(cfg: ClusterConfig, node_id: int, timeout: float = 120.0) -> int:
    """Start one node again (the others running) and return its pid once it answers."""
    return broker.start(cfg.node(node_id), timeout=timeout)


def stop_node(cfg: ClusterConfig, node_id: int) -> bool:
    """Stop one node cleanly (SIGTERM: it hands its partitions' leadership over)."""
    return broker.stop(cfg.node(node_id))


def kill_node(cfg: ClusterConfig, node_id: int) -> int | None:
    """SIGKILL one node, as a machine lost would; return the pid killed (None: not running)."""
    node = cfg.node(node_id)
    found = broker.status(node)
    if not found.running or found.pid is None:
        return None
    os.kill(found.pid, 9)
    end = time.monotonic() + 10.0
    while time.monotonic() < end and broker.status(node).running:
        time.sleep(0.1)
    node.pid_file.unlink(missing_ok=True)
    return found.pid


def stop_cluster(cfg: ClusterConfig) -> list[bool]:
    """Stop every node at once (which were running, node by node): stopped one after another,
    the last would wait for a quorum gone with the others."""
    with ThreadPoolExecutor(max_workers=cfg.nodes) as pool:
        return list(pool.map(broker.stop, cfg.members))


def cluster_status(cfg: ClusterConfig) -> list[BrokerStatus]:
    return [broker.status(node) for node in cfg.members]
