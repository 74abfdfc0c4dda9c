"""Creating yujing's topics on a broker, with the partition counts the registry gives."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from topics.registry import ALL_TOPICS, COMPACTED_ROLES, TopicSpec


async def ensure_topics(bootstrap: str, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    specs = list(ALL_TOPICS.values()) if specs is None else specs
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=1,
                           topic_configs={"cleanup.policy": "compact"}
                           if s.role in COMPACTED_ROLES else {})
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
