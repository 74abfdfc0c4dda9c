"""Creating yujing's topics on a broker, with the partition counts the registry gives, and
checking (or fixing) existing ones that differ."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from engine.kafka_client.connection import client_options
from topics.registry import ALL_TOPICS, COMPACTED_ROLES, TopicSpec


def replication_factor(given: int | None = None) -> int:
    """The replication factor of the topics yujing creates: ``given``, else
    ``YUJING_REPLICATION_FACTOR``, else 1 (one broker)."""
    return given or _count_setting("YUJING_REPLICATION_FACTOR", 1)


def min_insync_replicas(replication: int, given: int | None = None) -> int:
    """``given``, else ``YUJING_MIN_INSYNC_REPLICAS``, else 2 when there are three replicas or
    more (one may be lost while a write acknowledged by all in-sync replicas is kept), else 1."""
    return given or _count_setting("YUJING_MIN_INSYNC_REPLICAS", 2 if replication >= 3 else 1)


def _count_setting(name: str, default: int) -> int:
    """A whole number of at least 1 from the environment, or one clear error naming it."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 4 or int(raw) < 1:
        raise ValueError(f"{name}={raw[:40]!r}: not a whole number from 1 to 9999")
    return int(raw)


async def ensure_topics(bootstrap: str, specs: list[TopicSpec] | None = None,
                        replication: int | None = None, min_insync: int | None = None
                        ) -> list[str]:
    """Create the topics that do not exist yet, each ``replication`` times replicated with
    ``min_insync`` in-sync replicas required for a write (see ``replication_factor`` and
    ``min_insync_replicas`` for the defaults); return the names created."""
    specs = list(ALL_TOPICS.values()) if specs is None else specs
    rf = replication_factor(replication)
    isr = min_insync_replicas(rf, min_insync)
    if not 1 <= isr <= rf:
        raise ValueError(f"min.insync.replicas {isr} with replication factor {rf}")
    admin = AIOKafkaAdminClient(**client_options(bootstrap), request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=rf,
                           topic_configs={"min.insync.replicas": str(isr),
                                          **({"cleanup.policy": "compact"}
                                             if s.role in COMPACTED_ROLES else {})})
                  for s in specs if s.name not in existing]
        if not wanted:
            return []
        # Created concurrently by another process is what we wanted too.
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(wanted)
        await _wait_for_leaders(admin, [t.name for t in wanted])
        return [t.name for t in wanted]
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str],
                            timeout: float = 30.0) -> None:
    """Until every partition has a leader, producers would only meet NotLeader errors."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        described = await admin.describe_topics(names)
        if all(t["error_code"] == 0 and t["partitions"] and
               all(p["leader"] >= 0 for p in t["partitions"]) for t in described):
            return
        if loop.time() > deadline:
            raise TimeoutError(f"topics without a leader after {timeout:.0f}s: {names}")
        await asyncio.sleep(0.2)


@dataclass(frozen=True, slots=True)
class TopicProblem:
    """An existing topic that differs from the registry, and whether ``check_topics`` fixed
    it."""

    topic: str
    problem: str
    fixable: bool
    fixed: bool = False

    def __str__(self) -> str:
        state = "fixed" if self.fixed else ("fixable with --fix" if self.fixable else
                                            "not fixable in place")
        return f"{self.topic}: {self.problem} ({state})"


async def check_topics(bootstrap: str, specs: list[TopicSpec] | None = None,
                       fix: bool = False) -> list[TopicProblem]:
    """Compare the existing topics of ``specs`` with the registry: partition count and
    cleanup policy. With ``fix``, add the missing partitions and set the policy. (Kafka cannot
    take partitions away; and adding them moves keys to other partitions, so fix with the
    workers stopped.) A topic that does not exist is ``ensure_topics``' business."""
    specs = list(ALL_TOPICS.values()) if specs is None else specs
    admin = AIOKafkaAdminClient(**client_options(bootstrap), request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        mine = [s for s in specs if s.name in existing]
        if not mine:
            return []
        described = {t["topic"]: t for t in await admin.describe_topics([s.name for s in mine])}
        policies = await _cleanup_policies(admin, [s.name for s in mine])
        problems: list[TopicProblem] = []
        for spec in mine:
            found = len(described[spec.name]["partitions"])
            if found != spec.partitions:
                grow = found < spec.partitions
                fixed = False
                if grow and fix:
                    await admin.create_partitions(
                        {spec.name: NewPartitions(total_count=spec.partitions)})
                    fixed = True
                problems.append(TopicProblem(
                    spec.name, f"{found} partitions where the registry gives {spec.partitions}",
                    grow, fixed))
            wanted = "compact" if spec.role in COMPACTED_ROLES else "delete"
            policy = policies.get(spec.name, "delete")
            if policy != wanted:
                if fix:
                    await admin.alter_configs([ConfigResource(
                        ConfigResourceType.TOPIC, spec.name, {"cleanup.policy": wanted})])
                problems.append(TopicProblem(
                    spec.name, f"cleanup.policy {policy} where the registry gives {wanted}",
                    True, fix))
        return problems
    finally:
        await admin.close()


async def _cleanup_policies(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, str]:
    responses = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name, None) for name in names])
    policies: dict[str, str] = {}
    for response in responses:
        for resource in response.resources:
            name, entries = resource[3], resource[4]
            for entry in entries:
                if entry[0] == "cleanup.policy":
                    policies[name] = entry[1]
    return policies
