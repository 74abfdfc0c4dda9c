"""Building rules and events inline for tests."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml

from engine.rule_files.loader import CompiledRule, compile_rule_text
from topics.codec import Event, decode

_ids = itertools.count()

SILENT_AND_FIRING_TESTS = [
    {"name": "placeholder firing", "events": [], "expect": [{"at": "0s"}]},
    {"name": "placeholder silent", "events": [], "expect": []},
]


def rule_text(**fields: Any) -> str:
    """Rule-file YAML from the given fields over sensible defaults (its tests are placeholders:
    these rules exercise the engine, they are not catalogue models)."""
    doc = {
        "id": "test.rule.sample",
        "name": {"zh": "测试", "en": "test"},
        "departments": ["emergency_management"],
        "severity": "yellow",
        "summary": "{key}",
        "description": "test rule",
        "tests": SILENT_AND_FIRING_TESTS,
        **fields,
    }
    return yaml.safe_dump(doc, allow_unicode=True)


def rule(**fields: Any) -> CompiledRule:
    """A compiled rule from the given fields over sensible defaults."""
    compiled, errors = compile_rule_text(rule_text(**fields), Path("rule.yaml"))
    assert not errors, [str(e) for e in errors]
    assert compiled is not None
    return compiled


def event(topic: str, ts: float, **fields: Any) -> Event:
    fields.setdefault("event_id", f"ev-{next(_ids)}")
    decoded = decode(topic, {"ts": ts, **fields})
    assert isinstance(decoded, Event), decoded
    return decoded


FACILITY = "events.hazchem.facility"
VEHICLE = "events.hazchem.vehicle"


def tank(ts: float, tank_id: str = "T1", facility_id: str = "F1", **fields: Any) -> Event:
    return event(FACILITY, ts, tank_id=tank_id, facility_id=facility_id, **fields)


def vehicle(ts: float, vehicle_id: str = "V1", **fields: Any) -> Event:
    fields.setdefault("lat", 30.0)
    fields.setdefault("lon", 120.0)
    fields.setdefault("speed_kmh", 0.0)
    return event(VEHICLE, ts, vehicle_id=vehicle_id, **fields)


def drive(core: Any, events: list[Event], until: float | None = None) -> list[Any]:
    """Feed ``events`` one by one to a scoring core the way replay does (the clock follows
    event time, so deadlines fire between events); then advance to ``until``. The alerts."""
    alerts = []
    for ev in events:
        alerts += core.advance(ev.ts)
        alerts += core.process([ev])
    if until is not None:
        alerts += core.advance(until)
    return alerts
