"""Which partition Kafka gives a key: where a key's events, its state and its re-keyed events meet.

In the engine's Kafka layer rather than in ``topics``, so that the topic registry imports no Kafka
client.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

from topics.registry import DEFAULT_PARTITIONS


def partition_of(key: bytes, partitions: int = DEFAULT_PARTITIONS) -> int:
    """The partition Kafka's default partitioner (murmur2, aiokafka's as the Java client's)
    gives a record keyed ``key``.

    >>> partition_of(b"F-03-T3")
    0
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions
