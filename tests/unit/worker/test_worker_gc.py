"""The worker's garbage-collector settings: full collections rare, frozen heap, pauses timed."""

import gc

from engine import metrics
from engine.worker.gc_tuning import tune_gc


def full_pauses() -> float:
    return metrics.sample_value("yujing_gc_full_pause_seconds_count") or 0.0


def test_full_collections_are_rarer_the_loaded_heap_frozen_and_pauses_timed():
    threshold, callbacks = gc.get_threshold(), list(gc.callbacks)
    try:
        tune_gc()
        assert gc.get_threshold() == (threshold[0], threshold[1], 100)
        assert gc.get_freeze_count() > 1000  # this test process's modules, at least
        before = full_pauses()
        gc.collect(1)
        assert full_pauses() == before  # younger collections are not counted
        gc.collect()
        assert full_pauses() == before + 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        gc.callbacks[:] = callbacks
