"""The Faust worker, by concept:

- ``settings``: ``WorkerSettings``, the one source of the worker's defaults (the CLI's too);
- ``app``: ``Worker``, the Faust app built in Faust's order, and ``run_worker``;
- ``handling``: what its agents and timers do with a batch or a tick;
- ``intake``: decoding, re-keying and dead-lettering a batch, without Faust;
- ``state``, ``in_flight``: the changelog-backed state table and the records awaited before a
  commit;
- ``outputs``: publishing alerts, dead letters and re-keyed records;
- ``partition_watch``, ``partition_keeping``: keeping every partition read moving;
- ``faust_internals``: every access to faust, mode and aiokafka below their public API, and the
  check of their versions.

The names below load on first use, so the CLI can read the settings without importing Faust.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.worker.app import Worker, run_worker
    from engine.worker.settings import (
        REPARTITION_SUFFIX,
        STATE_TABLE,
        NoRulesError,
        WorkerSettings,
    )

_HOMES = {
    "Worker": "engine.worker.app",
    "run_worker": "engine.worker.app",
    "WorkerSettings": "engine.worker.settings",
    "NoRulesError": "engine.worker.settings",
    "REPARTITION_SUFFIX": "engine.worker.settings",
    "STATE_TABLE": "engine.worker.settings",
}

__all__ = ["REPARTITION_SUFFIX", "STATE_TABLE", "NoRulesError", "Worker", "WorkerSettings",
           "run_worker"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engine.worker' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
