"""Python's garbage collector tuned for a worker whose heap is mostly long-lived state."""

from __future__ import annotations

import gc
import time
from typing import Any

from engine import metrics


def tune_gc() -> None:
    """Make Python's full garbage collections rare and short, and time them.

    A worker's heap is mostly objects that never become garbage: modules, compiled rules, and
    the cached state of every key (hundreds of thousands of objects). Python walks all of them
    in each full collection, which with default settings freed nothing and made the worker's
    largest pauses after the state write (``bench/README.md``). What exists once the rules are
    loaded is frozen out of the collector's reach, and a full collection waits for ten times as
    many younger collections as by default. The worker makes little cyclic garbage, so memory
    does not suffer: ``yujing_gc_full_pause_seconds`` shows what is left."""
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 100)
    started = 0.0

    def time_full_collections(phase: str, info: dict[str, Any]) -> None:
        nonlocal started
        if info["generation"] == 2:
            if phase == "start":
                started = time.perf_counter()
            else:
                metrics.GC_FULL_PAUSE_SECONDS.observe(time.perf_counter() - started)

    gc.callbacks.append(time_full_collections)
