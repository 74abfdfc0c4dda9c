"""What the worker's broker-free tests share: batch items as Faust's ``take_events`` hands them
over, and a worker built (never started) on rule files written for the test."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
from faust.types import TP

from engine.worker import Worker, WorkerSettings
from tests.rulekit import FACILITY, rule_text


def message(topic: str, key: str, value: dict[str, Any] | bytes, offset: int,
            partition: int = 0) -> Any:
    """One item of a ``take_events`` batch."""
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return SimpleNamespace(message=SimpleNamespace(
        topic=topic, key=key.encode(), value=raw, partition=partition, offset=offset,
        tp=TP(topic, partition)))


def counting_worker(tmp_path: Path) -> Worker:
    """A worker with one rule, ``test.tank.readings``: three facility events of a tank within
    ten minutes fire it; events of any age are accepted."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "readings.yaml").write_text(rule_text(
        id="test.tank.readings", source=FACILITY, kind="window", aggregate="count",
        size="10m", condition="value >= 3"), encoding="utf-8")
    return Worker(WorkerSettings(rules=[rules], max_event_age_s=0, data_dir=tmp_path / "data",
                                 reload_interval_s=0))
