"""Memory and changelog volume per 100,000 active keys, with every rule loaded.

    python bench/state.py [--keys 100000] [--events-per-key 5]

Feeds ``--keys`` tanks and ``--keys`` tankers a few readings each through the scoring core and
reports the resident memory it took and the bytes a changelog would hold (one pickled entity
per key, as the worker writes them).
"""

from __future__ import annotations

import argparse
import gc
import pickle
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.core import MemoryStore, ScoringCore
from engine.rule_files.loader import load_rules
from topics.codec import Event, decode


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * 4096 / 2**20


def events(keys: int, per_key: int, topic: str) -> list[Event]:
    out = []
    for i in range(per_key):
        for k in range(keys):
            ts = 1717380000 + i * 60 + k % 60
            if topic == "events.hazchem.facility":
                value = {"event_id": f"f{k}-{i}", "ts": ts, "tank_id": f"T{k}",
                         "facility_id": f"F{k // 8}", "level_pct": 50.0 + (k + i) % 7,
                         "temp_c": 20.0, "pressure_kpa": 800.0 + i, "lel_pct": 1.0,
                         "toxic_ppm": 0.1, "grid_id": f"G{k % 180:03d}"}
            else:
                value = {"event_id": f"v{k}-{i}", "ts": ts, "vehicle_id": f"V{k}",
                         "lat": 30.3 + (k % 100) * 1e-4, "lon": 120.3 + i * 1e-4,
                         "speed_kmh": 40.0 + i, "ignition": True, "road_class": "urban",
                         "cargo_class": 3.0, "load_t": 20.0, "rated_load_t": 30.0,
                         "tank_pressure_kpa": 300.0, "tank_temp_c": 25.0, "valve_open": False,
                         "waybill_id": f"W{k}", "driver_id": f"D{k}", "plate": f"浙A{k}"}
            decoded = decode(topic, value)
            assert isinstance(decoded, Event), decoded
            out.append(decoded)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--events-per-key", type=int, default=5)
    args = parser.parse_args()
    rules = load_rules([REPO / "rules"]).rules
    for topic in ("events.hazchem.facility", "events.hazchem.vehicle"):
        feed = events(args.keys, args.events_per_key, topic)
        n_rules = sum(topic in r.spec.sources for r in rules)
        gc.collect()
        before = rss_mb()
        store = MemoryStore()
        core = ScoringCore(rules, store)
        started = time.perf_counter()
        for i in range(0, len(feed), 1000):
            core.process(feed[i:i + 1000])
        seconds = time.perf_counter() - started
        gc.collect()
        grown = rss_mb() - before
        entities = list(store.entities())
        changelog = sum(len(pickle.dumps({s: e}, protocol=pickle.HIGHEST_PROTOCOL))
                        for s, _, e in entities)
        print(f"{topic}: {args.keys:,} keys × {args.events_per_key} events, {n_rules} rules; "
              f"{len(entities):,} entities; resident +{grown:,.0f} MB "
              f"({grown * 2**20 / args.keys:,.0f} B/key); changelog {changelog / 2**20:,.1f} MB "
              f"({changelog / len(entities):,.0f} B/entity); {len(feed) / seconds:,.0f} events/s")
        del feed, store, core, entities
        gc.collect()


if __name__ == "__main__":
    main()
