"""The scoring core alone (no broker): events/s per core with all rules, and µs per event per
rule of each model kind.

    python bench/core.py [--duration 6h] [--rate 1.0] [--batch 1000]

Events come from the city simulator (every department), decoded once up front so the figure
is the core's own cost: routing, state load/save, each rule's score_one/learn_one, decisions.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.core import MemoryStore, ScoringCore
from engine.reference_records import track_lookup_event
from engine.rule_files.loader import load_rules
from models.durations import parse_duration
from simulator.base import SimContext, parse_start
from simulator.run import Simulation, reference_city
from topics.codec import Event, decode


def simulated_events(duration: str, rate: float, seed: int) -> list[Event]:
    begin = parse_start("2024-06-03T00:00:00")
    ctx = SimContext(seed=seed, start=begin, end=begin + parse_duration(duration), rate=rate,
                     city=reference_city(REPO / "rules"))
    out = []
    for envelope in Simulation(ctx).events():
        decoded = decode(envelope.topic, envelope.value, key=envelope.key)
        if isinstance(decoded, Event):
            out.append(decoded)
    return out


def time_core(rules, events: list[Event], batch: int, reference) -> tuple[float, int]:
    core = ScoringCore(rules, MemoryStore())
    gc.collect()
    alerts = 0
    started = time.perf_counter()
    for i in range(0, len(events), batch):
        chunk = events[i:i + batch]
        for event in chunk:
            track_lookup_event(reference, event)
        alerts += len(core.advance(chunk[0].ts))
        alerts += len(core.process(chunk))
    return time.perf_counter() - started, alerts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", default="6h")
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    loaded = load_rules([REPO / "rules"])
    rules = loaded.rules
    events = simulated_events(args.duration, args.rate, args.seed)
    topics = Counter(e.topic for e in events)
    print(f"{len(events):,} simulated events over {args.duration} "
          f"({len(topics)} topics), {len(rules)} rules")

    seconds, alerts = time_core(rules, events, args.batch, loaded.env.reference)
    print(f"all rules: {len(events) / seconds:,.0f} events/s on one core "
          f"({seconds * 1e6 / len(events):.1f} µs/event), {alerts} alert records")

    # Per kind: the same events through only that kind's rules; the cost is divided by the
    # number of (event, rule) pairs the router hands those rules.
    by_kind = defaultdict(list)
    for rule in rules:
        by_kind[rule.spec.kind].append(rule)
    empty, _ = time_core([], events, args.batch, loaded.env.reference)
    print(f"no rules (routing and batching only): {empty * 1e6 / len(events):.2f} µs/event")
    print(f"{'kind':12} {'rules':>5} {'pairs':>10} {'µs/pair':>8}")
    for kind, kind_rules in sorted(by_kind.items()):
        sources = Counter(t for r in kind_rules for t in r.spec.sources)
        pairs = sum(topics[t] * n for t, n in sources.items())
        if not pairs:
            continue
        seconds, _ = time_core(kind_rules, events, args.batch, loaded.env.reference)
        print(f"{kind:12} {len(kind_rules):5} {pairs:10,} {(seconds - empty) * 1e6 / pairs:8.2f}")


if __name__ == "__main__":
    main()
