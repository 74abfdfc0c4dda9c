"""The event decoder alone: µs per event to turn a department record's bytes into an event (or
a dead letter), as the worker does with each record it reads.

    python bench/decode.py [--duration 1h] [--passes 7]

Records come from the city simulator (every department), encoded once up front; each pass
decodes all of them with the worker's event-time bounds (without a horizon: the simulated city
is of 2024). Prints the best and the median pass.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import orjson

from models.durations import parse_duration
from simulator.base import SimContext, parse_start
from simulator.run import Simulation, reference_city
from topics.codec import EventTimePolicy, decode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", default="1h")
    parser.add_argument("--passes", type=int, default=7)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    begin = parse_start("2024-06-03T00:00:00")
    ctx = SimContext(seed=args.seed, start=begin, end=begin + parse_duration(args.duration),
                     rate=1.0, incidents_per_model=2, city=reference_city(REPO / "rules"))
    records = [(e.topic, e.value if isinstance(e.value, bytes) else orjson.dumps(e.value), e.key)
               for e in Simulation(ctx).events()]
    bounds = EventTimePolicy(max_age_s=0).around(time.time())
    passes = []
    for _ in range(args.passes):
        started = time.perf_counter()
        for topic, value, key in records:
            decode(topic, value, key=key, bounds=bounds)
        passes.append((time.perf_counter() - started) / len(records) * 1e6)
    passes.sort()
    print(f"{len(records):,} records: decode {passes[0]:.2f} µs per event at best, "
          f"{passes[len(passes) // 2]:.2f} median of {args.passes} passes")


if __name__ == "__main__":
    main()
