"""Running the simulator: every department's events merged in time order, plus ground truth."""

from __future__ import annotations

import heapq
import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

from simulator.base import Department, Envelope, Incident, SimContext
from simulator.city import City

SLICE = 3600.0
"""Departments produce an hour at a time; each hour is sorted, so memory stays bounded."""


def departments() -> dict[str, type[Department]]:
    """Every ``Department`` in ``simulator.departments``, by name."""
    from simulator import departments as package

    found: dict[str, type[Department]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, Department)
                    and value.__module__ == module.__name__ and "name" in vars(value)):
                found[value.name] = value
    return found


class Simulation:
    def __init__(self, ctx: SimContext, only: list[str] | None = None) -> None:
        self.ctx = ctx
        self.departments = [cls(ctx) for name, cls in departments().items()
                            if not only or name in only]
        self.incidents: dict[str, list[Incident]] = {d.name: d.plan() for d in self.departments}

    @property
    def truth(self) -> list[Incident]:
        return sorted((i for plans in self.incidents.values() for i in plans),
                      key=lambda i: (i.start, i.incident_id))

    def events(self) -> Iterator[Envelope]:
        """All events of the run, in event-time order."""
        t0 = self.ctx.start
        while t0 < self.ctx.end:
            t1 = min(t0 + SLICE, self.ctx.end)
            streams = []
            for dept in self.departments:
                chunk = [e for e in dept.events(t0, t1, self.incidents[dept.name])
                         if t0 <= e.ts < t1]
                chunk.sort(key=lambda e: e.ts)
                streams.append(chunk)
            yield from heapq.merge(*streams, key=lambda e: e.ts)
            t0 = t1


def reference_city(rules: Path | None) -> City:
    """The city with the zones of the rule set's reference files."""
    from engine.rule_files.loader import load_rules

    return City(load_rules([rules]).env.reference) if rules else City()


def write_jsonl(sim: Simulation, events: Path, truth: Path | None) -> int:
    """Write the run's events (envelopes) and ground truth; return the number of events."""
    import orjson

    count = 0
    with events.open("wb") as out:
        for envelope in sim.events():
            out.write(orjson.dumps(envelope.as_json()) + b"\n")
            count += 1
    if truth is not None:
        write_truth(sim, truth)
    return count


def write_truth(sim: Simulation, path: Path) -> None:
    import orjson

    path.write_bytes(b"".join(orjson.dumps(i.as_json()) + b"\n" for i in sim.truth))


async def send_to_kafka(sim: Simulation, bootstrap: str, speed: float | None = None) -> int:
    """Produce the run's events to their topics; ``speed`` paces them (1.0 = real time, 60 =
    an hour a minute); ``None`` sends as fast as the producer can."""
    import asyncio
    import time

    import orjson
    from aiokafka import AIOKafkaProducer

    from engine.kafka_client.connection import client_options

    producer = AIOKafkaProducer(**client_options(bootstrap), linger_ms=20,
                                max_batch_size=256 * 1024, acks="all",
                                enable_idempotence=True)
    await producer.start()
    sent = 0
    wall0 = time.monotonic()
    try:
        for envelope in sim.events():
            if speed:
                due = (envelope.ts - sim.ctx.start) / speed - (time.monotonic() - wall0)
                if due > 0:
                    await asyncio.sleep(due)
            await producer.send(envelope.topic, orjson.dumps(envelope.value),
                                key=envelope.key.encode())
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent
